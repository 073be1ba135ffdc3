"""Instruction templates (>= 10 per family) and the fixed UI captions pages use.

Templates are ``str.format`` strings over the family's named slots. Every word that appears here is
"fixed text": it shows up on pages of both splits, so vocab.py never holds it out.
"""
from __future__ import annotations

import random

PHRASINGS: dict[str, tuple[str, ...]] = {
    "click-button": (
        'Click the "{label}" button.',
        'Press the button labelled "{label}".',
        'Click on "{label}".',
        'Find the "{label}" button and click it.',
        'Hit the "{label}" button.',
        'Select the button that says "{label}".',
        'Tap "{label}".',
        'Please click the button named "{label}".',
        'Push the "{label}" button on this page.',
        'Activate the "{label}" button.',
        'Use the "{label}" button.',
        'Click the button with the text "{label}".',
    ),
    "click-link": (
        'Click the "{label}" link.',
        'Follow the link "{label}".',
        'Open the link labelled "{label}".',
        'Click on the link that says "{label}".',
        'Go to "{label}" by clicking its link.',
        'Find the link "{label}" and click it.',
        'Tap the "{label}" link.',
        'Navigate via the "{label}" link.',
        'Please follow the "{label}" link.',
        'Select the link with the text "{label}".',
        'Click the hyperlink "{label}".',
    ),
    "type-field": (
        'Type "{text}" into the {field} field and submit.',
        'Enter "{text}" in the field labelled {field}, then press {submit}.',
        'Fill in {field} with "{text}" and click {submit}.',
        'Write "{text}" in the {field} box and submit it.',
        'Put "{text}" into {field}, then submit the form.',
        'Set the {field} field to "{text}" and press {submit}.',
        'In the {field} input, type "{text}" and submit.',
        'Please enter "{text}" as the {field} and click {submit}.',
        'Input "{text}" into {field}; then hit {submit}.',
        'Change {field} to "{text}" and submit.',
        'Use the {field} field: type "{text}", then click {submit}.',
    ),
    "fill-form-submit": (
        'Fill out the form with {pairs}, then click {submit}.',
        'Complete the form: {pairs}. Submit with {submit}.',
        'Enter {pairs} and press {submit}.',
        'Please fill in {pairs}, then submit the form.',
        'Set {pairs} in the form and click {submit}.',
        'Type {pairs}; when done, hit {submit}.',
        'Provide {pairs} and submit.',
        'Use these values: {pairs}. Then click {submit}.',
        'Fill the fields as follows: {pairs}. Finish with {submit}.',
        'Put {pairs} into the form and press {submit}.',
        'In the form, enter {pairs} and then click {submit}.',
    ),
    "check-boxes": (
        'Select {items} and nothing else, then click {submit}.',
        'Check {items} only, and press {submit}.',
        'Tick the boxes for {items} (leave the rest unchecked) and submit.',
        'Make sure exactly {items} are checked, then click {submit}.',
        'Mark {items} and no other options; finish with {submit}.',
        'Only {items} should be ticked. Click {submit} when done.',
        'Choose {items} from the checkboxes and submit.',
        'Check the options {items}, uncheck all others, then hit {submit}.',
        'Leave only {items} selected and press {submit}.',
        'Select exactly these: {items}. Then click {submit}.',
        'Tick {items}, nothing more, and submit the form.',
    ),
    "choose-radio": (
        'Choose "{option}" for {group} and click {submit}.',
        'Select the {group} option "{option}", then submit.',
        'Pick "{option}" under {group} and press {submit}.',
        'Set {group} to "{option}" and click {submit}.',
        'Mark the radio button "{option}" in {group}, then submit.',
        'For {group}, select "{option}" and hit {submit}.',
        'Choose the option "{option}" ({group}) and submit the form.',
        'Please pick "{option}" as the {group}, then click {submit}.',
        'In the {group} group, choose "{option}"; finish with {submit}.',
        'Select "{option}" from {group} and press {submit}.',
        'Use "{option}" for {group} and submit.',
    ),
    "select-option": (
        'Select "{option}" from the {field} dropdown and click {submit}.',
        'Choose "{option}" in {field}, then submit.',
        'Set the {field} list to "{option}" and press {submit}.',
        'Pick "{option}" as the {field} and click {submit}.',
        'From the {field} menu, choose "{option}", then hit {submit}.',
        'Change {field} to "{option}" and submit.',
        'In the dropdown {field}, select "{option}"; then click {submit}.',
        'Please choose the {field} option "{option}" and submit the form.',
        'Make "{option}" the selected {field}, then press {submit}.',
        'Open {field}, choose "{option}", and click {submit}.',
        'Use "{option}" for {field} and submit.',
    ),
    "toggle-setting": (
        'Open the {tab} tab, turn {state} "{setting}", then click {submit}.',
        'In the {tab} tab, switch "{setting}" {state} and press {submit}.',
        'Go to {tab} and turn {state} the "{setting}" setting; save with {submit}.',
        'Switch to the {tab} tab, set "{setting}" to {state}, then click {submit}.',
        'Turn "{setting}" {state} (it is in the {tab} tab) and click {submit}.',
        'Under {tab}, toggle "{setting}" {state} and hit {submit}.',
        'Please turn {state} "{setting}" in {tab}, then press {submit}.',
        'Find "{setting}" in the {tab} tab, turn it {state}, and click {submit}.',
        'Select the {tab} tab and switch {state} "{setting}"; then {submit}.',
        'Set the "{setting}" option in {tab} to {state} and click {submit}.',
        'Change "{setting}" to {state} in the {tab} tab, then save with {submit}.',
    ),
    "accordion-open-click": (
        'Expand the "{section}" section and click "{label}".',
        'Open "{section}", then click the "{label}" button inside it.',
        'In the "{section}" section, click "{label}".',
        'Show the "{section}" panel and press "{label}".',
        'Unfold "{section}" and click the button "{label}".',
        'Click "{label}", which is inside the collapsed "{section}" section.',
        'Open the "{section}" accordion and hit "{label}".',
        'Expand "{section}"; then press the "{label}" button.',
        'Please open the section "{section}" and click "{label}".',
        'Find "{label}" under "{section}" and click it.',
        'Reveal "{section}" and select "{label}".',
    ),
    "dialog-confirm": (
        'Click "{trigger}" and confirm with "{confirm}".',
        'Press "{trigger}", then click "{confirm}" in the dialog.',
        'Use "{trigger}" and confirm the dialog.',
        'Click the "{trigger}" button and accept the confirmation.',
        'Start "{trigger}" and answer "{confirm}" when asked.',
        'Hit "{trigger}"; in the popup, click "{confirm}".',
        'Please press "{trigger}" and confirm it.',
        'Click "{trigger}", then confirm by pressing "{confirm}".',
        'Trigger "{trigger}" and click "{confirm}" in the dialog that opens.',
        'Press the "{trigger}" button and approve the dialog with "{confirm}".',
        'Do "{trigger}" and confirm with the "{confirm}" button.',
    ),
    "menu-item": (
        'Open the "{menu}" menu and choose "{item}".',
        'Click "{menu}", then select "{item}".',
        'From the "{menu}" menu, pick "{item}".',
        'In the menu "{menu}", click "{item}".',
        'Choose "{item}" from the "{menu}" dropdown menu.',
        'Open "{menu}" and click the "{item}" entry.',
        'Use the "{menu}" menu to select "{item}".',
        'Please select "{menu}" > "{item}".',
        'Go to "{menu}" and choose "{item}".',
        'Click the "{menu}" menu button and then "{item}".',
        'Pick the menu item "{item}" under "{menu}".',
    ),
    "set-date": (
        'Set {field} to {date} and click {submit}.',
        'Enter {date} as the {field} and submit.',
        'Pick the date {date} for {field}, then press {submit}.',
        'Change the {field} date to {date} and click {submit}.',
        'Fill in {field} with {date} and hit {submit}.',
        'Type the date {date} into {field}, then submit.',
        'Please set the {field} field to {date} and press {submit}.',
        'Choose {date} for the {field} and click {submit}.',
        'Make {field} {date}, then submit the form.',
        'In the {field} date input, enter {date}; then click {submit}.',
        'Use {date} as {field} and press {submit}.',
    ),
    "set-slider": (
        'Set the {field} slider to {value} and click {submit}.',
        'Move the {field} slider to {value}, then press {submit}.',
        'Adjust {field} to {value} and submit.',
        'Drag {field} until it shows {value}; then click {submit}.',
        'Change {field} to exactly {value} and hit {submit}.',
        'Please set {field} to {value} and click {submit}.',
        'Slide {field} to {value} and submit the form.',
        'Make the {field} value {value}, then press {submit}.',
        'Use the slider to set {field} to {value}; finish with {submit}.',
        'Put the {field} slider at {value} and click {submit}.',
        'Set {field} = {value} with the slider, then submit.',
    ),
    "table-row-action": (
        'Click "{action}" in the row where {column} is "{value}".',
        'In the table, find the row with {column} "{value}" and click its "{action}" button.',
        'Press "{action}" for the row whose {column} is "{value}".',
        'Find "{value}" in the {column} column and click "{action}" in that row.',
        'Use the "{action}" action on the row with {column} = "{value}".',
        'Please click "{action}" next to "{value}".',
        'For the entry "{value}" ({column}), press "{action}".',
        'Locate the row where {column} says "{value}" and hit "{action}".',
        'Click the "{action}" button of the "{value}" row.',
        'Select "{action}" for "{value}" in the table.',
        'In the row for "{value}", click "{action}".',
    ),
    "scroll-list-click": (
        'Scroll the {list} list to "{label}" and click it.',
        'Find "{label}" in the {list} list and click it.',
        'Click "{label}" in the {list} list (you may need to scroll).',
        'In the scrolling {list} list, click on "{label}".',
        'Scroll to the item "{label}" in {list} and select it.',
        'Please click the {list} entry "{label}".',
        'Locate "{label}" among the {list} items and click it.',
        'Select "{label}" from the {list} list.',
        'Scroll through {list} until you see "{label}", then click it.',
        'Click the item named "{label}" in {list}.',
        'Open "{label}" from the {list} list.',
    ),
    "search-open-result": (
        'Search for "{query}" and open the result "{result}".',
        'Type "{query}" in the search box, search, then click "{result}".',
        'Use the search to find "{query}" and open "{result}".',
        'Search "{query}" and click the result titled "{result}".',
        'Look up "{query}" and open "{result}" from the results.',
        'Enter "{query}" in search, submit, and click "{result}".',
        'Please search for "{query}", then open "{result}".',
        'Find "{result}" by searching for "{query}" and click it.',
        'Run a search for "{query}" and select the result "{result}".',
        'Search the site for "{query}"; open the "{result}" result.',
        'Query "{query}" and open the matching result "{result}".',
    ),
}

# Fixed UI captions (chosen per page by the episode's Random)
SUBMIT = ("Submit", "Save", "Apply", "Continue", "Send", "Done", "OK", "Update", "Save changes", "Confirm")
CONFIRM = ("Yes", "Confirm", "OK", "Proceed", "Continue", "Yes, continue")
CANCEL = ("Cancel", "No", "Go back", "Dismiss", "Not now", "Close")
SEARCH = ("Search", "Go", "Find")
ROW_ACTIONS = ("Edit", "Delete", "View", "Open", "Remove", "Details", "Archive", "Share", "Rename", "Duplicate")
STATUS = ("Active", "Paused", "Draft", "Done", "Pending", "Failed", "Queued", "Closed")
DIALOG_TEXT = ("Are you sure?", "Please confirm this action.", "This cannot be undone. Continue?",
               "Do you want to proceed?", "Confirm to continue.")
FIELD_KINDS = ("Name", "Full name", "Email", "Password", "Username", "City", "Phone", "Company", "Title",
               "Comment", "Notes", "Message", "Nickname", "Website", "Postcode")
DATE_FIELDS = ("Start date", "End date", "Due date", "Birthday", "Check-in", "Check-out", "Deadline",
               "Delivery date", "Appointment", "Renewal date")
SLIDER_FIELDS = ("Volume", "Brightness", "Opacity", "Zoom", "Speed", "Quality", "Balance", "Contrast",
                 "Font size", "Budget")
TABLE_COLUMNS = ("Name", "Owner", "Status", "Updated", "Size", "Amount")
FILLER = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "Welcome back.",
          "Changes are saved automatically.", "Need help? Read the docs.", "All systems operational.",
          "Last updated a moment ago.", "Tip: use the search above.", "No new notifications.")

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


def fixed_text() -> str:
    """All fixed text pages and instructions may contain, for the held-out split."""
    parts = [t for ts in PHRASINGS.values() for t in ts]
    for group in (SUBMIT, CONFIRM, CANCEL, SEARCH, ROW_ACTIONS, STATUS, DIALOG_TEXT, FIELD_KINDS,
                  DATE_FIELDS, SLIDER_FIELDS, TABLE_COLUMNS, FILLER, MONTHS):
        parts.extend(group)
    # words used by generated chrome (section headings, tab titles, hints, layout captions)
    parts.append("on off menu search results no results found settings more overview home help "
                 "page of item items selected value close open the and for with dropdown list "
                 "account profile general options preferences filters")
    return " ".join(parts)


def instruction(rng: random.Random, family: str, **slots: str) -> str:
    return rng.choice(PHRASINGS[family]).format(**slots)


def join_items(items: list[str]) -> str:
    """'"A"', '"A" and "B"', '"A", "B" and "C"'; 'nothing' for none."""
    q = [f'"{x}"' for x in items]
    if not q:
        return "nothing"
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + " and " + q[-1]
