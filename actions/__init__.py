"""What can be done: the action schema, the response parser/formatter, the drivers."""
from actions.errors import ActionParseError
from actions.format import format_step, to_uitars
from actions.parse import ModelSpace, parse_response
from actions.schema import (ACTION_KINDS, Action, ActionResult, Back, CallUser, Click, DoubleClick, Drag,
                            Finished, Hotkey, Hover, Navigate, Point, RightClick, Scroll, Select, Step,
                            Type, Wait, action_from_dict, action_points)

__all__ = [
    "parse_response", "to_uitars", "format_step", "ModelSpace", "ActionParseError",
    "Action", "ActionResult", "Step", "Point", "ACTION_KINDS", "action_from_dict", "action_points",
    "Click", "DoubleClick", "RightClick", "Hover", "Drag", "Scroll", "Type", "Hotkey", "Select", "Wait",
    "Navigate", "Back", "Finished", "CallUser",
]
