"""The models the product ships or expects, with their licences: one table for the code, the tests and the docs.

Plain Python (no Django). :data:`MODELS` lists every model: the files that installed packages ship and the engine
loads (face landmarks, face recogniser, content-safety detector, pose detector), the ones built into a library
(dlib's HOG face detector), the ones the engine builds itself (the tiny demo model), the files the project ships
(CLIP's BPE merges) and the ones the operator provides (base models, ControlNets). docs/licences.md is the same
table in words, and tests/test_licences.py holds the code to it:

- the engine loads a model file only when :func:`allowed_model_file` says so (an entry here whose licence allows
  commercial use): ``faces._model_path`` refuses any other name, and a test watches every file the face and
  safety checks open;
- every model file inside the runtime dependencies' installed files is an entry here, loaded or not (a package
  may ship more models than the engine uses: ``face_recognition_models`` ships dlib's 68-point landmark model,
  whose training set excludes commercial use; it is listed with ``loaded=False`` and never opened).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelLicence:
    """One model: where it comes from, its licence, whether that licence allows commercial use, whether the
    engine loads it. ``package``/``path``: the distribution and its file (as in its RECORD) for a model file an
    installed package ships; empty for the others (``origin`` says where they come from). ``embedded_licence``:
    what the file's own metadata says (an ONNX graph's ``license`` entry), when it says something;
    ``open_risk``: a licence question the business has not settled yet (docs/licences.md)."""

    key: str
    role: str
    origin: str
    licence: str
    commercial_use: bool
    loaded: bool
    package: str = ""
    path: str = ""
    note: str = ""
    embedded_licence: str = ""
    open_risk: str = ""

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1] if self.path else ""


MODELS: tuple[ModelLicence, ...] = (
    ModelLicence(
        key="dlib-hog-face-detector",
        role="face detector (intake, likeness)",
        origin="built into dlib (dlib.get_frontal_face_detector(); dlib-bin wheel)",
        licence="Boost Software License 1.0 (dlib)",
        commercial_use=True,
        loaded=True,
        note="HOG filters compiled into dlib's source; trained by dlib's author on faces he annotated in LFW images.",
    ),
    ModelLicence(
        key="dlib-shape-predictor-5",
        role="face landmarks, 5 points (aligns the face for the recogniser)",
        origin="face_recognition_models 0.3.0 (dlib-models by Davis King)",
        licence="public domain (CC0 1.0; dlib-models README, face_recognition_models LICENSE)",
        commercial_use=True,
        loaded=True,
        package="face_recognition_models",
        path="face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
        note="Trained on dlib's own 5-point dataset (7,198 faces annotated by dlib's author).",
    ),
    ModelLicence(
        key="dlib-face-recognition-resnet-v1",
        role="face recogniser (128-d embeddings: same person, likeness)",
        origin="face_recognition_models 0.3.0 (dlib-models by Davis King)",
        licence="public domain (CC0 1.0; dlib-models README, face_recognition_models LICENSE)",
        commercial_use=True,
        loaded=True,
        package="face_recognition_models",
        path="face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
        note="About half its 3 million training faces come from FaceScrub and VGG Face, research datasets; the "
        "weights are released into the public domain by their author (see docs/licences.md).",
    ),
    ModelLicence(
        key="nudenet-308-best-onnx",
        role="content-safety detector (explicit nudity in intake photos)",
        origin="nudenet 3.0.8 wheel (nudenet/best.onnx), run with onnxruntime",
        licence="MIT (the nudenet 3.0.8 wheel's metadata and licence file)",
        commercial_use=True,
        loaded=True,
        package="nudenet",
        path="nudenet/best.onnx",
        note="nudenet 3.4.x wheels carry the AGPL-3.0 text: pinned to 3.0.8.",
        embedded_licence="AGPL-3.0 https://ultralytics.com/license",
        open_risk="A YOLOv8 model exported by Ultralytics 8.0.173, whose exporter stamped AGPL-3.0 in the file's "
        "metadata; Ultralytics claims AGPL-3.0 over models trained with its code. See docs/licences.md.",
    ),
    ModelLicence(
        key="dlib-shape-predictor-68",
        role="face landmarks, 68 points: NOT USED",
        origin="face_recognition_models 0.3.0 (dlib-models by Davis King)",
        licence="trained on iBUG 300-W, whose licence excludes commercial use",
        commercial_use=False,
        loaded=False,
        package="face_recognition_models",
        path="face_recognition_models/models/shape_predictor_68_face_landmarks.dat",
        note="Installed with face_recognition_models; the engine never opens it (faces.py refuses it).",
    ),
    ModelLicence(
        key="dlib-mmod-cnn-face-detector",
        role="CNN face detector: NOT USED",
        origin="face_recognition_models 0.3.0 (dlib-models by Davis King)",
        licence="public domain (CC0 1.0; dlib-models README)",
        commercial_use=True,
        loaded=False,
        package="face_recognition_models",
        path="face_recognition_models/models/mmod_human_face_detector.dat",
        note="Installed with face_recognition_models; the engine uses the HOG detector instead.",
    ),
    ModelLicence(
        key="clip-bpe-merges",
        role="CLIP tokenizer merges (prompt token counts in the web process)",
        origin="shipped by the project: engine/clip_bpe/merges.txt.gz (OpenAI CLIP, via open_clip)",
        licence="MIT (engine/clip_bpe/LICENSE)",
        commercial_use=True,
        loaded=True,
    ),
    ModelLicence(
        key="tiny-demo-models",
        role="demo and test base models (tiny-sd15, tiny-sdxl)",
        origin="built by the project offline with random weights (engine.checkpoints.build_tiny_model)",
        licence="the project's own (no third-party weights)",
        commercial_use=True,
        loaded=True,
    ),
    ModelLicence(
        key="sd15",
        role="base model (operator-provided): Stable Diffusion 1.5",
        origin="ENGINE_BASE_MODELS (e.g. stable-diffusion-v1-5/stable-diffusion-v1-5)",
        licence="CreativeML OpenRAIL-M",
        commercial_use=True,
        loaded=True,
        note="Commercial use allowed with use restrictions (Attachment A) that the studio terms must pass on.",
    ),
    ModelLicence(
        key="sdxl",
        role="base model (operator-provided): SDXL 1.0",
        origin="ENGINE_BASE_MODELS (e.g. stabilityai/stable-diffusion-xl-base-1.0)",
        licence="CreativeML OpenRAIL++-M",
        commercial_use=True,
        loaded=True,
        note="Commercial use allowed with use restrictions (Attachment A) that the studio terms must pass on.",
    ),
    ModelLicence(
        key="controlnets",
        role="ControlNets (operator-provided, optional): pose, canny",
        origin="ENGINE_CONTROLNETS (e.g. lllyasviel/control_v11p_sd15_openpose, control_v11p_sd15_canny)",
        licence="CreativeML OpenRAIL-M for lllyasviel's SD 1.5 ControlNets; check each model card",
        commercial_use=True,
        loaded=True,
        note="A pose reference is an OpenPose skeleton image; a photo is turned into one by engine/pose.py with "
        "MediaPipe's BlazePose (mediapipe-blazepose), never with OpenPose's own models (non-commercial).",
    ),
    ModelLicence(
        key="mediapipe-blazepose-detector",
        role="pose detector, stage 1 (a photo's OpenPose skeleton for the pose ControlNet, engine/pose.py)",
        origin="mediapipe 0.10.21 wheel (installed with --no-deps by the Makefile), run by mediapipe's own graph",
        licence="Apache-2.0 (the mediapipe wheel's licence; Google's BlazePose GHUM 3D model card)",
        commercial_use=True,
        loaded=True,
        package="mediapipe",
        path="mediapipe/modules/pose_detection/pose_detection.tflite",
    ),
    ModelLicence(
        key="mediapipe-blazepose-landmarks",
        role="pose detector, stage 2: 33 body landmarks (engine/pose.py maps them to OpenPose's 18)",
        origin="mediapipe 0.10.21 wheel (installed with --no-deps by the Makefile), run by mediapipe's own graph",
        licence="Apache-2.0 (the mediapipe wheel's licence; Google's BlazePose GHUM 3D model card)",
        commercial_use=True,
        loaded=True,
        package="mediapipe",
        path="mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        note="Only the bundled full landmark model (model_complexity 1): mediapipe downloads the lite and heavy "
        "ones at run time, which engine/pose.py refuses.",
    ),
    *(
        ModelLicence(
            key=f"mediapipe-{name.rsplit('/', 1)[-1].removesuffix('.tflite').replace('_', '-')}",
            role="shipped in the mediapipe wheel, never loaded (faces, hands, iris, selfie segmentation)",
            origin="mediapipe 0.10.21 wheel",
            licence="Apache-2.0 (the mediapipe wheel's licence)",
            commercial_use=True,
            loaded=False,
            package="mediapipe",
            path=f"mediapipe/modules/{name}",
            note="Installed with mediapipe; the engine only runs the pose graph.",
        )
        for name in (
            "face_detection/face_detection_full_range_sparse.tflite",
            "face_detection/face_detection_short_range.tflite",
            "face_landmark/face_landmark.tflite",
            "face_landmark/face_landmark_with_attention.tflite",
            "hand_landmark/hand_landmark_full.tflite",
            "hand_landmark/hand_landmark_lite.tflite",
            "holistic_landmark/hand_recrop.tflite",
            "iris_landmark/iris_landmark.tflite",
            "palm_detection/palm_detection_full.tflite",
            "palm_detection/palm_detection_lite.tflite",
            "selfie_segmentation/selfie_segmentation.tflite",
            "selfie_segmentation/selfie_segmentation_landscape.tflite",
        )
    ),
    ModelLicence(
        key="inpainting-unets",
        role="inpainting UNets (operator-provided, optional): template photos",
        origin="ENGINE_INPAINT_UNETS (e.g. the SD 1.5 inpainting checkpoint's unet/ folder)",
        licence="CreativeML OpenRAIL-M for the SD 1.5 inpainting checkpoint; check each model card",
        commercial_use=True,
        loaded=True,
        note="Without one, template photos inpaint with the base model's own UNet (no extra model).",
    ),
    ModelLicence(
        key="super-resolution",
        role="super-resolution model (operator-provided, optional): print-size output",
        origin="ENGINE_UPSCALER_MODEL: an ESRGAN-family .pth/.safetensors loaded by spandrel 0.4.2 (MIT, core "
        "architectures only; never spandrel_extra_arches)",
        licence="depends on the file: Real-ESRGAN's code is BSD-3-Clause, its released weights state no licence",
        commercial_use=True,
        loaded=True,
        note="Without one, print size is Lanczos + the tiled re-render with the base model (no extra model).",
        open_risk="Real-ESRGAN's weights carry no explicit licence (xinntao/Real-ESRGAN issue #677): the operator "
        "should choose weights with a stated commercial licence, or run without one (docs/licences.md).",
    ),
)


def model_files() -> dict[tuple[str, str], ModelLicence]:
    """The entries that are files of an installed package, by (package, path)."""
    return {(m.package, m.path): m for m in MODELS if m.package}


def allowed_model_file(package: str, file_name: str) -> ModelLicence | None:
    """The entry for ``file_name`` in ``package`` when the engine may load it (listed, loaded, commercial use
    allowed); None otherwise."""
    for model in MODELS:
        if model.package == package and model.file_name == file_name and model.loaded and model.commercial_use:
            return model
    return None
