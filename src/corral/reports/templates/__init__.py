"""The HTML report's presentation: element building, inline SVG charts, the stylesheet."""
