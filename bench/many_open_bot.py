"""``resetbot run`` for the burst benchmarks, with one product rule relaxed.

The lab has a handful of people and a burst sends hundreds of ``/reset`` for them: production's one open request per
target (issue 15's abuse limits) would refuse all but the first for each person, and the benchmark would measure
refusals, not requests. Everything else (the other limits included) comes from the environment, as for
``resetbot run``. A benchmark helper, never shipped: the product has no setting for this rule."""

from __future__ import annotations

import sys
from typing import Any

import bot.services.requests as requests_module
from bot.__main__ import main
from bot.domain.limits import LimitRules


def _many_open(**limits: Any) -> LimitRules:
    return LimitRules(**limits, one_open_per_target=False)


if __name__ == "__main__":
    # bot.services.requests builds its rules as LimitRules(...) from the settings: give it this one instead.
    setattr(requests_module, "LimitRules", _many_open)  # noqa: B010 - the module does not export the name
    sys.exit(main(sys.argv[1:]))
