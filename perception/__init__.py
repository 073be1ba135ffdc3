"""What is seen: screenshots, coordinate spaces, UI elements, observations."""
from perception.observation import Box, Element, Observation, Range
from perception.observe import observe, render_elements
from perception.space import CoordinateSpace, smart_resize

__all__ = ["CoordinateSpace", "smart_resize", "Observation", "Element", "Box", "Range", "observe", "render_elements"]
