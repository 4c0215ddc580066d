"""Block Kit as Slack's servers treat it: validation, generated ids, interactive elements and their state.

Why this exists: the bot's Block Kit is only proven right if something rejects what Slack would reject
(``invalid_blocks``, ``invalid_arguments``) and fills in what Slack fills in (a ``block_id`` / ``action_id``
for every block and element that lacks one, because ``block_actions`` payloads always carry both). The
driver also needs to find "the Approve button" in a stored message and build the exact action and
``state.values`` shapes a real client would send. Validation covers the limits the bot is likely to hit
(counts, lengths, required fields); it is not a full schema check.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterator
from typing import Any

JSON = dict[str, Any]

#: Block types Slack accepts in messages, modals and App Home (``input`` is allowed in all three).
BLOCK_TYPES = frozenset({
    "actions", "context", "divider", "file", "header", "image", "input", "markdown", "rich_text",
    "section", "video", "table", "context_actions",
})
#: Element types that can produce ``block_actions`` or ``state.values`` entries.
INTERACTIVE_TYPES = frozenset({
    "button", "checkboxes", "datepicker", "datetimepicker", "email_text_input", "number_input", "overflow",
    "plain_text_input", "radio_buttons", "rich_text_input", "timepicker", "url_text_input",
    "static_select", "external_select", "users_select", "conversations_select", "channels_select",
    "multi_static_select", "multi_external_select", "multi_users_select", "multi_conversations_select",
    "multi_channels_select", "file_input", "workflow_button",
})
#: Elements whose value is kept in ``state.values`` (buttons and overflow menus are not stateful).
STATEFUL_TYPES = INTERACTIVE_TYPES - {"button", "overflow", "workflow_button"}

MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100

_ID_ALPHABET = string.ascii_letters + string.digits


class BlockError(ValueError):
    """Block Kit that Slack would refuse; ``messages`` are the ``[json-pointer:...]`` texts Slack returns."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def generated_id(length: int = 5) -> str:
    """A random id in the style Slack generates for missing ``block_id`` / ``action_id`` values."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def text_errors(obj: Any, pointer: str, *, max_len: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"must provide an object [json-pointer:{pointer}]"]
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        return [f"must be one of {', '.join(allowed)} [json-pointer:{pointer}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{pointer}/text]"]
    if len(text) > max_len:
        return [f"must be less than {max_len + 1} characters [json-pointer:{pointer}/text]"]
    return []


def _element_errors(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"must provide an object with a type [json-pointer:{pointer}]"]
    errors: list[str] = []
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        errors.append(f"must be less than 256 characters [json-pointer:{pointer}/action_id]")
    if element["type"] == "button":
        errors += text_errors(element.get("text"), f"{pointer}/text", max_len=75, plain_only=True)
        value = element.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > 2000):
            errors.append(f"must be less than 2001 characters [json-pointer:{pointer}/value]")
        if element.get("style") not in (None, "primary", "danger"):
            errors.append(f"must be one of primary, danger [json-pointer:{pointer}/style]")
        url = element.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > 3000):
            errors.append(f"must be less than 3001 characters [json-pointer:{pointer}/url]")
    return errors


def _section_errors(block: JSON, pointer: str) -> list[str]:
    errors: list[str] = []
    if "text" not in block and "fields" not in block:
        errors.append(f"must provide text or fields [json-pointer:{pointer}]")
    if "text" in block:
        errors += text_errors(block["text"], f"{pointer}/text", max_len=3000)
    fields = block.get("fields")
    if fields is not None:
        if not isinstance(fields, list) or len(fields) > 10:
            errors.append(f"must provide at most 10 items [json-pointer:{pointer}/fields]")
        else:
            for i, item in enumerate(fields):
                errors += text_errors(item, f"{pointer}/fields/{i}", max_len=2000)
    if "accessory" in block:
        errors += _element_errors(block["accessory"], f"{pointer}/accessory")
    return errors


def _header_errors(block: JSON, pointer: str) -> list[str]:
    return text_errors(block.get("text"), f"{pointer}/text", max_len=150, plain_only=True)


def _actions_errors(block: JSON, pointer: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
        return [f"must provide between 1 and 25 items [json-pointer:{pointer}/elements]"]
    errors: list[str] = []
    for i, element in enumerate(elements):
        errors += _element_errors(element, f"{pointer}/elements/{i}")
    return errors


def _context_errors(block: JSON, pointer: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
        return [f"must provide between 1 and 10 items [json-pointer:{pointer}/elements]"]
    return []


def _input_errors(block: JSON, pointer: str) -> list[str]:
    return (text_errors(block.get("label"), f"{pointer}/label", max_len=2000, plain_only=True)
            + _element_errors(block.get("element"), f"{pointer}/element"))


_BLOCK_CHECKS = {"section": _section_errors, "header": _header_errors, "actions": _actions_errors,
                 "context": _context_errors, "input": _input_errors}


def _block_errors(block: Any, pointer: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"must provide an object [json-pointer:{pointer}]"]
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        return [f"unsupported type: {kind!r} [json-pointer:{pointer}/type]"]
    errors: list[str] = []
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or not block_id or len(block_id) > 255):
        errors.append(f"must be between 1 and 255 characters [json-pointer:{pointer}/block_id]")
    check = _BLOCK_CHECKS.get(str(kind))
    if check is not None:
        errors += check(block, pointer)
    return errors


def normalize_blocks(blocks: Any, *, limit: int, pointer: str = "/blocks") -> list[JSON]:
    """Validate ``blocks`` and return a copy with every missing ``block_id`` / ``action_id`` filled in.

    Raises BlockError with Slack-style messages. The copy is what Slack stores and echoes back.
    """
    if not isinstance(blocks, list):
        raise BlockError([f"must provide an array [json-pointer:{pointer}]"])
    if len(blocks) > limit:
        raise BlockError([f"must provide at most {limit} items [json-pointer:{pointer}]"])
    errors: list[str] = []
    for i, block in enumerate(blocks):
        errors += _block_errors(block, f"{pointer}/{i}")
    if errors:
        raise BlockError(errors)
    out: list[JSON] = [_deep_copy(b) for b in blocks]
    seen: set[str] = set()
    for i, block in enumerate(out):
        block_id = block.get("block_id")
        if block_id is None:
            block_id = generated_id()
            while block_id in seen:
                block_id = generated_id()
            block["block_id"] = block_id
        elif block_id in seen:
            errors.append(f"duplicate block_id: {block_id} [json-pointer:{pointer}/{i}/block_id]")
        seen.add(block_id)
    for i, block in enumerate(out):
        errors += _duplicate_action_ids(block, f"{pointer}/{i}")
    if errors:
        raise BlockError(errors)
    for _block, element in iter_elements(out):
        if "action_id" not in element:
            element["action_id"] = generated_id(4)
    return out


def _duplicate_action_ids(block: JSON, pointer: str) -> list[str]:
    """Slack: an action_id "should be unique among all other action_ids in the containing block"; two equal ones
    make the message invalid_blocks (a click could never tell them apart)."""
    ids = [str(e["action_id"]) for _, e in iter_elements([block]) if e.get("action_id") is not None]
    return [f"duplicate action_id: {dup} [json-pointer:{pointer}]" for dup in sorted({a for a in ids
                                                                                     if ids.count(a) > 1})]


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def iter_elements(blocks: list[JSON]) -> Iterator[tuple[JSON, JSON]]:
    """Every interactive element with the block that holds it, in display order."""
    for block in blocks:
        kind = block.get("type")
        candidates: list[Any] = []
        if kind == "actions":
            candidates = list(block.get("elements") or [])
        elif kind == "section":
            candidates = [block.get("accessory")]
        elif kind == "input":
            candidates = [block.get("element")]
        for element in candidates:
            if isinstance(element, dict) and element.get("type") in INTERACTIVE_TYPES:
                yield block, element


def find_element(blocks: list[JSON], action_id: str, value: Any = None) -> tuple[JSON, JSON] | None:
    """The element with ``action_id``; when several share it, the button whose ``value`` matches."""
    matches = [(b, e) for b, e in iter_elements(blocks) if e.get("action_id") == action_id]
    if len(matches) > 1 and value is not None:
        exact = [(b, e) for b, e in matches if e.get("value") == value]
        if exact:
            return exact[0]
    return matches[0] if matches else None


def _options(element: JSON) -> list[JSON]:
    options: list[JSON] = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += list(group.get("options") or [])
    return options


def option_for(element: JSON, value: Any) -> JSON:
    """The option of a select / radio / checkbox / overflow element whose ``value`` is ``value``."""
    if isinstance(value, dict):
        return value
    for option in _options(element):
        if option.get("value") == value:
            return option
    raise ValueError(f"element {element.get('action_id')!r} has no option with value {value!r}")


def _selection(kind: str, element: JSON, raw: Any) -> JSON:
    """The ``state.values`` entry (without ``type``) for element ``kind`` given a plain value."""
    multi = kind.startswith("multi_") or kind == "checkboxes"
    if kind in ("static_select", "external_select", "radio_buttons"):
        return {"selected_option": None if raw is None else option_for(element, raw)}
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        return {"selected_options": [option_for(element, v) for v in _as_list(raw)]}
    for family, key in (("users", "user"), ("conversations", "conversation"), ("channels", "channel")):
        if kind.endswith(f"{family}_select"):
            if multi:
                return {f"selected_{key}s": _as_list(raw)}
            return {f"selected_{key}": raw}
    if kind == "datepicker":
        return {"selected_date": raw}
    if kind == "timepicker":
        return {"selected_time": raw}
    if kind == "datetimepicker":
        return {"selected_date_time": None if raw is None else int(raw)}
    if kind == "number_input":
        return {"value": None if raw is None else str(raw)}
    return {"value": raw}


def _as_list(raw: Any) -> list[Any]:
    if raw is None:
        return []
    return list(raw) if isinstance(raw, list | tuple) else [raw]


def initial_state(element: JSON) -> JSON:
    """The ``state.values`` entry of an element the person did not touch (its initial value, if any)."""
    kind = str(element.get("type"))
    raw: Any = None
    for key in ("initial_value", "initial_date", "initial_time", "initial_date_time", "initial_user",
                "initial_conversation", "initial_channel", "initial_users", "initial_conversations",
                "initial_channels"):
        if key in element:
            raw = element[key]
            break
    if "initial_option" in element:
        raw = element["initial_option"]
    if "initial_options" in element:
        raw = list(element["initial_options"])
    return {"type": kind, **_selection(kind, element, raw)}


def state_entry(element: JSON, raw: Any) -> JSON:
    """The ``state.values`` entry for ``element`` set to ``raw`` (a plain value, or an already Slack-shaped dict)."""
    kind = str(element.get("type"))
    if isinstance(raw, dict) and "type" in raw:
        return raw
    return {"type": kind, **_selection(kind, element, raw)}


def build_state(blocks: list[JSON], values: JSON | None = None) -> JSON:
    """``state.values`` ({block_id: {action_id: entry}}) for every stateful element in ``blocks``.

    ``values`` may be keyed by ``block_id`` (then by ``action_id``), by ``action_id`` alone, or by
    ``"block_id.action_id"``; entries may be plain values or Slack-shaped dicts.
    """
    values = values or {}
    state: JSON = {}
    for block, element in iter_elements(blocks):
        kind = element.get("type")
        if kind not in STATEFUL_TYPES:
            continue
        block_id, action_id = str(block["block_id"]), str(element["action_id"])
        found, raw = _lookup(values, block_id, action_id)
        entry = state_entry(element, raw) if found else initial_state(element)
        state.setdefault(block_id, {})[action_id] = entry
    return state


def _lookup(values: JSON, block_id: str, action_id: str) -> tuple[bool, Any]:
    nested = values.get(block_id)
    if isinstance(nested, dict) and "type" not in nested and action_id in nested:
        return True, nested[action_id]
    dotted = f"{block_id}.{action_id}"
    if dotted in values:
        return True, values[dotted]
    if action_id in values:
        return True, values[action_id]
    return False, None


def unknown_value_keys(blocks: list[JSON], values: JSON) -> list[str]:
    """Keys of ``values`` that match no stateful element: a typo in a test should fail loudly."""
    known: set[str] = set()
    for block, element in iter_elements(blocks):
        if element.get("type") in STATEFUL_TYPES:
            known |= {str(block["block_id"]), str(element["action_id"]), f"{block['block_id']}.{element['action_id']}"}
    return [k for k in values if k not in known]


def is_empty(entry: JSON) -> bool:
    """Whether a ``state.values`` entry holds nothing (what Slack's client checks before submitting)."""
    payload = {k: v for k, v in entry.items() if k != "type"}
    return all(v in (None, "", []) for v in payload.values())


def missing_required(blocks: list[JSON], state: JSON) -> list[str]:
    """Block ids of non-optional input blocks left empty: Slack's client refuses to submit those."""
    missing: list[str] = []
    for block in blocks:
        if block.get("type") != "input" or block.get("optional"):
            continue
        element = block.get("element")
        if not isinstance(element, dict):
            continue
        entry = state.get(str(block["block_id"]), {}).get(str(element.get("action_id")))
        if entry is None or is_empty(entry):
            missing.append(str(block["block_id"]))
    return missing


def action_payload(block: JSON, element: JSON, raw: Any, *, action_ts: str) -> JSON:
    """One entry of ``block_actions.actions`` as Slack's client sends it for this element."""
    kind = str(element.get("type"))
    action: JSON = {"action_id": element["action_id"], "block_id": block["block_id"]}
    if kind == "button":
        action["text"] = element.get("text")
        if "value" in element:
            action["value"] = element["value"]
        if "style" in element:
            action["style"] = element["style"]
    elif kind == "overflow":
        action["selected_option"] = option_for(element, raw)
    else:
        entry = state_entry(element, raw)
        action.update({k: v for k, v in entry.items() if k != "type"})
        if "placeholder" in element:
            action["placeholder"] = element["placeholder"]
    action["type"] = kind
    action["action_ts"] = action_ts
    return action


def apply_values(blocks: list[JSON], state: JSON, values: JSON) -> JSON:
    """``state`` with the elements named in ``values`` set (what a person typing or picking does)."""
    out: JSON = {b: dict(a) for b, a in state.items()}
    for block, element in iter_elements(blocks):
        if element.get("type") not in STATEFUL_TYPES:
            continue
        block_id, action_id = str(block["block_id"]), str(element["action_id"])
        found, raw = _lookup(values, block_id, action_id)
        if found:
            out.setdefault(block_id, {})[action_id] = state_entry(element, raw)
        else:
            out.setdefault(block_id, {}).setdefault(action_id, initial_state(element))
    return out
