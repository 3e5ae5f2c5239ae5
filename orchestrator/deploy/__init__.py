"""Answers for registered hardware targets without retraining: the fronts of a stored experiment on a
target (``fronts``), one network within a budget (``picking``), a changed target's new network
(``switching``) and the scheduler that re-solves on a timetable and whenever a target changes."""
