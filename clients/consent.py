"""The consent text a studio starts with (version 1, created on first use; the studio edits it into new
versions). Plain words: what is collected, what it is used for, how long it is kept, and the client's rights.
Existing versions are stored rows: a change here only reaches a studio's first version (issue 13, finding 12)."""

from __future__ import annotations

DEFAULT_CONSENT_TEXT = """\
I agree that the studio may use the photos I upload to create a digital double of my face, which is used only \
to make portraits for me.

- My photos are checked automatically (one face, sharp, well lit, the same person, nothing explicit).
- The original photos and face crops are deleted as soon as my digital double has been trained, and at the \
latest after the retention period if no training happens.
- With my digital double the studio keeps a numerical description of my face (128 numbers computed from my \
photos, a biometric template), encrypted. It is used only to score how closely later portraits resemble me, and \
it is deleted together with my digital double.
- My photos and my digital double are never shared with anyone else and never used to train other models.
- I can ask at any time for a copy of everything the studio keeps about me, or for all of it to be deleted.
"""

# The same default in the other languages clients can read (settings.LANGUAGES): a studio's first version of its
# text in that language, for clients who read their pages in it. A studio edits each language on its own.
DEFAULT_CONSENT_TEXTS = {
    "en": DEFAULT_CONSENT_TEXT,
    "fr": """\
J’accepte que le studio utilise les photos que j’envoie pour créer un double numérique de mon visage, qui sert \
uniquement à réaliser des portraits pour moi.

- Mes photos sont vérifiées automatiquement (un seul visage, nettes, bien éclairées, la même personne, aucun \
contenu explicite).
- Les photos d’origine et les recadrages du visage sont supprimés dès que mon double numérique a été entraîné, et \
au plus tard à la fin de la durée de conservation si aucun entraînement n’a lieu.
- Avec mon double numérique, le studio conserve, chiffrée, une description numérique de mon visage (128 nombres \
calculés à partir de mes photos, un gabarit biométrique). Elle sert uniquement à mesurer à quel point les \
portraits suivants me ressemblent, et elle est supprimée en même temps que mon double numérique.
- Mes photos et mon double numérique ne sont jamais partagés avec qui que ce soit ni utilisés pour entraîner \
d’autres modèles.
- Je peux demander à tout moment une copie de tout ce que le studio conserve à mon sujet, ou la suppression de \
l’ensemble.
""",
    "zh-hans": """\
我同意工作室使用我上传的照片，为我的面部创建数字分身，该数字分身仅用于为我制作肖像。

- 我的照片会经过自动检查（只有一张人脸、清晰、光线良好、为同一人、不含不雅内容）。
- 数字分身训练完成后，原始照片和面部裁剪图会立即删除；如未进行训练，最迟在保留期结束时删除。
- 工作室会连同我的数字分身一起，加密保存一份我面部的数字描述（根据我的照片计算出的 128 个数值，即生物特征模板）。\
它仅用于评估后续肖像与我本人的相似程度，并会与我的数字分身一同删除。
- 我的照片和数字分身绝不会与任何其他人共享，也绝不会用于训练其他模型。
- 我可以随时要求获取工作室所保存的关于我的全部信息的副本，或要求将其全部删除。
""",
}


def default_consent_text(language: str) -> str:
    """The default text in `language` (English when there is none in it)."""
    return DEFAULT_CONSENT_TEXTS.get(language, DEFAULT_CONSENT_TEXT)
