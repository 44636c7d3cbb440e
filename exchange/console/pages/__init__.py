"""One router per console area, mounted under /console."""
