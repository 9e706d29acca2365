"""Views of a plan, one module per format: ``text``, ``json``, ``markdown``. Each is a pure
function ``render(plan, ...) -> str``."""
