"""The starter catalog: built-in templates any studio can copy into its own catalog and then adapt.

Written for the product's promise: portraits that are real (photographic, natural skin texture, no plastic
look), resembling (the client's face, not a prettier stranger's: identity weights stay near 1) and beautiful
(flattering, well-motivated light). How the prompts are built:

- `{subject}` is where the client's trigger phrase goes ("ohwx woman"); it comes early, since Stable Diffusion's
  text encoder reads 77 positions at a time and weighs the start most. Every prompt and negative prompt fits one
  such window (75 tokens by CLIP's own count, engine.prompts; a test checks it): the engine would
  encode a longer one whole, but the first window is where attention is strongest. Wording stays neutral
  (person, they, partner) so every template works for every client.
- Photographic vocabulary rather than adjectives: a lens, an aperture, a light setup, a film stock. These steer
  SD 1.5 and SDXL models towards photographs far more reliably than "beautiful, 8k, masterpiece".
- Negative prompts name the artefacts generated portraits are known for (waxy or airbrushed skin, extra fingers,
  asymmetric eyes, CGI look, text and watermarks), plus what would break the style (colour in a black-and-white
  template, modern clothes in a vintage one).
- Settings: DPM++ 2M Karras at 30 steps is the quality/speed sweet spot for both families; guidance 5-7 keeps
  skin natural (higher values oversaturate and harden faces); the identity weight is 1.0 for likeness-first
  styles and a little lower for stylised ones (fantasy, fashion), where a studio can move it on the slider.
- Finishing: every starter runs the face pass (each face re-rendered at full resolution with the client's
  likeness) and is delivered at print size, 3000 px on the long side (about 25 cm at 300 dpi); the face pass's
  and the upscale's own values are the model's defaults.
- Group starters (`subject_slots` 2 or more) name each person `{subject_1}`, `{subject_2}` … instead of
  `{subject}` (each becomes that person's trigger phrase, engine/group.py), and say where each one stands
  (`slot_boxes`, fractions of the picture), so a studio has a couple's portrait to try.
- Prices are suggestions (per delivered image, in the studio's currency); the studio sets its own.

A starter is copied, never referenced: the copy is an ordinary draft template (`Template.starter_key` records
where it came from) with the registry's default base model, so later changes to this catalog never change a
studio's templates or their results.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext, gettext_noop

_BASE_NEGATIVE = (
    "cartoon, anime, illustration, painting, 3d render, cgi, plastic skin, waxy skin, airbrushed, "
    "oversaturated, deformed face, asymmetric eyes, extra fingers, mutated hands, bad anatomy, blurry, lowres, "
    "jpeg artifacts, watermark, text, logo"
)


@dataclass(frozen=True)
class Starter:
    key: str
    name: str
    category: str
    description: str
    prompt: str
    negative_prompt: str
    scheduler: str = "dpmpp_2m_karras"
    steps: int = 30
    guidance: float = 6.0
    identity_weight: float = 1.0
    images_per_run: int = 8
    price_per_image: Decimal = Decimal("9.00")
    face_pass: bool = True
    long_side: int = 3000
    subject_slots: int = 1
    slot_boxes: tuple[tuple[float, float, float, float], ...] = ()

    @property
    def display_name(self) -> str:
        """The name as a studio reads it, in its language (a copy keeps the English `name`)."""
        return gettext(self.name)

    @property
    def display_description(self) -> str:
        return gettext(self.description)

    @property
    def category_label(self) -> str:
        from templates_app.models import Category

        return str(Category(self.category).label)

    def settings(self) -> dict[str, Any]:
        """The render settings of a copy (render_settings.clean_settings input; the base model is added there)."""
        return {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "scheduler": self.scheduler,
            "steps": self.steps,
            "guidance": self.guidance,
            "identity_weight": self.identity_weight,
            "images_per_run": self.images_per_run,
            "price_per_image": self.price_per_image,
            "face_pass": self.face_pass,
            "long_side": self.long_side,
            "subject_slots": self.subject_slots,
            "slot_boxes": [list(box) for box in self.slot_boxes],
        }


STARTERS: tuple[Starter, ...] = (
    Starter(
        key="corporate-headshot",
        name=gettext_noop("Corporate headshot"),
        category="business",
        description=gettext_noop(
            "A clean, confident headshot for LinkedIn, company websites and speaker bios: soft key "
            "light, neutral grey backdrop, business attire, head and shoulders."
        ),
        prompt="professional corporate headshot photo of {subject}, head and shoulders, confident friendly "
        "expression, tailored business attire, soft diffused key light, subtle rim light, seamless neutral grey "
        "backdrop, 85mm lens, f/4, sharp focus on the eyes, natural skin texture",
        negative_prompt=_BASE_NEGATIVE + ", busy background, harsh shadows, casual clothes, sunglasses",
        guidance=6.0,
        identity_weight=1.05,
        price_per_image=Decimal("12.00"),
    ),
    Starter(
        key="classic-studio-rembrandt",
        name=gettext_noop("Classic studio portrait (Rembrandt light)"),
        category="classic",
        description=gettext_noop(
            "The timeless painter's light: one key light high and to the side, a triangle of light on "
            "the shadowed cheek, a dark textured backdrop. Flattering for almost every face."
        ),
        prompt="classic studio portrait photograph of {subject}, Rembrandt lighting, soft key light high at 45 "
        "degrees, triangle of light on the shadow-side cheek, dark textured canvas backdrop, calm expression, "
        "medium format, 100mm lens, rich tonal range, natural skin texture",
        negative_prompt=_BASE_NEGATIVE + ", flat lighting, flash glare, bright background",
        guidance=6.0,
        price_per_image=Decimal("12.00"),
    ),
    Starter(
        key="black-white-film",
        name=gettext_noop("Black-and-white film portrait"),
        category="classic",
        description=gettext_noop(
            "Fine-art monochrome: the grain and tonality of Ilford HP5 pushed one stop, window light, "
            "deep blacks. Honest and striking."
        ),
        prompt="black and white film portrait photograph of {subject}, Ilford HP5 pushed, visible film grain, "
        "soft window light from the side, deep blacks and clean highlights, thoughtful expression, 50mm lens, "
        "f/2, shallow depth of field, natural skin texture, gelatin silver print look",
        negative_prompt=_BASE_NEGATIVE + ", color, colour, sepia, digital noise, hdr",
        guidance=5.5,
        price_per_image=Decimal("10.00"),
    ),
    Starter(
        key="film-35mm-colour",
        name=gettext_noop("35mm film, colour"),
        category="vintage",
        description=gettext_noop(
            "The warm, forgiving look of Kodak Portra 400: gentle contrast, creamy skin tones, soft "
            "grain, open shade outdoors."
        ),
        prompt="35mm film photograph of {subject}, Kodak Portra 400, warm natural skin tones, soft grain, "
        "gentle contrast, open shade, relaxed candid expression, 50mm lens, f/2.8, slight vignette, "
        "authentic analog colour, natural skin texture",
        negative_prompt=_BASE_NEGATIVE + ", digital look, hdr, heavy vignette, oversharpened",
        guidance=5.5,
        price_per_image=Decimal("9.00"),
    ),
    Starter(
        key="wedding-portrait",
        name=gettext_noop("Wedding portrait"),
        category="wedding",
        description=gettext_noop(
            "A romantic, airy wedding portrait in soft backlight, for brides, grooms and couples alike "
            "(the prompt says 'wedding attire': adapt the wording to the couple)."
        ),
        prompt="elegant wedding portrait photograph of {subject} in wedding attire, soft golden backlight, airy "
        "bright tones, romantic garden venue softly out of focus, joyful natural smile, 85mm lens, f/1.8, "
        "creamy bokeh, delicate details, natural skin texture, fine-art wedding photography",
        negative_prompt=_BASE_NEGATIVE + ", crowd, harsh flash, dark moody tones",
        guidance=6.0,
        price_per_image=Decimal("15.00"),
    ),
    Starter(
        key="family-golden-hour",
        name=gettext_noop("Outdoor golden hour"),
        category="family",
        description=gettext_noop(
            "Warm, relaxed outdoor portraits in the last hour of sun: backlit hair, a meadow softly out "
            "of focus. Family-friendly and easy to love."
        ),
        prompt="warm outdoor portrait photograph of {subject} at golden hour, sun low behind, glowing backlit "
        "hair, meadow softly out of focus, relaxed happy expression, casual natural clothing, 85mm lens, f/2, "
        "warm natural colours, lifestyle photography, natural skin texture",
        negative_prompt=_BASE_NEGATIVE + ", lens flare blowout, overexposed face, studio backdrop",
        guidance=5.5,
        price_per_image=Decimal("9.00"),
    ),
    Starter(
        key="vintage-1950s",
        name=gettext_noop("Vintage 1950s"),
        category="vintage",
        description=gettext_noop(
            "Mid-century glamour: period hair and wardrobe, a painted backdrop, the soft colour of an "
            "old Kodachrome slide."
        ),
        prompt="1950s vintage studio portrait photograph of {subject}, period hairstyle and wardrobe, painted "
        "mottled backdrop, soft butterfly lighting, Kodachrome colour, gentle film grain, classic Hollywood "
        "glamour, 80mm lens, natural skin texture",
        negative_prompt=_BASE_NEGATIVE + ", modern clothing, smartphone, contemporary hairstyle",
        guidance=6.5,
        identity_weight=0.95,
        price_per_image=Decimal("11.00"),
    ),
    Starter(
        key="fashion-editorial",
        name=gettext_noop("Fashion editorial"),
        category="fashion",
        description=gettext_noop(
            "A magazine-cover look: bold styling, a hard beauty-dish key light, a coloured seamless "
            "backdrop. The identity weight is slightly lower to let the styling lead."
        ),
        prompt="high fashion editorial photograph of {subject}, striking pose, designer outfit, beauty dish key "
        "light, crisp defined shadows, bold coloured seamless backdrop, magazine cover styling, 70mm lens, "
        "f/8, sharp detail, natural skin texture with retouched finish",
        negative_prompt=_BASE_NEGATIVE + ", amateur snapshot, cluttered background",
        guidance=6.5,
        identity_weight=0.95,
        price_per_image=Decimal("14.00"),
    ),
    Starter(
        key="traditional-hanfu",
        name=gettext_noop("Traditional dress: hanfu"),
        category="traditional",
        description=gettext_noop(
            "Graceful Han-style dress with flowing layered silk, in a classical garden. Review the "
            "garment wording with the client: traditional dress carries meaning."
        ),
        prompt="portrait photograph of {subject} wearing elegant traditional hanfu, flowing layered silk robes "
        "with fine embroidery, classical Chinese garden with a moon gate softly out of focus, soft overcast "
        "light, serene expression, 85mm lens, f/2.8, natural skin texture, rich authentic fabric detail",
        negative_prompt=_BASE_NEGATIVE + ", costume-party look, cheap fabric, modern clothing",
        guidance=6.0,
        price_per_image=Decimal("13.00"),
    ),
    Starter(
        key="traditional-kimono",
        name=gettext_noop("Traditional dress: kimono"),
        category="traditional",
        description=gettext_noop(
            "A formal kimono with an obi in a quiet tatami room and soft shoji light. Review the "
            "garment wording with the client: traditional dress carries meaning."
        ),
        prompt="portrait photograph of {subject} wearing a formal silk kimono with an obi, delicate woven "
        "patterns, quiet traditional Japanese room with tatami and shoji screens, soft diffused window light, "
        "calm dignified expression, 85mm lens, f/2.8, natural skin texture, authentic fabric detail",
        negative_prompt=_BASE_NEGATIVE + ", costume-party look, cheap fabric, modern clothing",
        guidance=6.0,
        price_per_image=Decimal("13.00"),
    ),
    Starter(
        key="traditional-sari",
        name=gettext_noop("Traditional dress: sari"),
        category="traditional",
        description=gettext_noop(
            "A silk sari with a gold-woven border in warm courtyard light. Review the garment wording "
            "with the client: traditional dress carries meaning."
        ),
        prompt="portrait photograph of {subject} wearing an elegant silk sari with an intricate gold-woven "
        "border, graceful drape, sunlit heritage courtyard with carved stone softly out of focus, warm natural "
        "light, gentle smile, 85mm lens, f/2.8, natural skin texture, rich authentic fabric detail",
        negative_prompt=_BASE_NEGATIVE + ", costume-party look, cheap fabric, modern clothing",
        guidance=6.0,
        price_per_image=Decimal("13.00"),
    ),
    Starter(
        key="fantasy-enchanted",
        name=gettext_noop("Fantasy: enchanted forest"),
        category="fantasy",
        description=gettext_noop(
            "A cinematic fantasy portrait: ornate costume, a misty forest lit by shafts of light, still "
            "photographic rather than painted. Identity weight a little lower for the stylised look; raise it if "
            "the client should be recognised at a glance."
        ),
        prompt="cinematic fantasy portrait photograph of {subject} as a noble elven ranger, ornate leather and "
        "silver costume, misty enchanted forest, volumetric light rays, soft glowing particles, shallow depth "
        "of field, 85mm lens, photorealistic, natural skin texture, film still",
        negative_prompt=_BASE_NEGATIVE + ", pointy plastic ears, costume shop look, flat lighting",
        guidance=6.5,
        identity_weight=0.9,
        images_per_run=8,
        price_per_image=Decimal("14.00"),
    ),
    Starter(
        key="couple-studio-light",
        name=gettext_noop("Couple, studio light"),
        category="family",
        description=gettext_noop(
            "Two people side by side in soft studio light: couples, friends, a parent and child. A group "
            "template: each face is rendered with that person's own likeness (person 1 on the left, person 2 on the "
            "right)."
        ),
        prompt="studio portrait photograph of {subject_1} and {subject_2} side by side, shoulders touching, warm "
        "natural smiles, soft key light, neutral grey backdrop, 70mm lens, f/5.6, both faces in sharp focus, "
        "natural skin texture",
        negative_prompt=_BASE_NEGATIVE + ", extra people, merged faces, identical twins",
        guidance=6.0,
        price_per_image=Decimal("15.00"),
        subject_slots=2,
        slot_boxes=((0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)),
    ),
)

_BY_KEY = {starter.key: starter for starter in STARTERS}


def all_starters() -> tuple[Starter, ...]:
    return STARTERS


def get_starter(key: str) -> Starter | None:
    return _BY_KEY.get(key)
