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
