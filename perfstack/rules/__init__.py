"""Alert and recording rules as code: the model, the naming conventions, and the build.

Rule content lives in ``alerts/<area>.py`` (each defines ``groups``); this package turns it into
``alerts/generated/<area>.yml`` (``perfstack alerts build``) and checks that the committed files
match the code (``perfstack alerts check``).
"""

from .model import Alert, Group, Recording

__all__ = ["Alert", "Group", "Recording"]
