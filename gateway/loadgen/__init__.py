"""`switchboard loadgen`: demo traffic against a gateway, with a live view of where the
router sends it.

options.py   the command's options (light: the CLI parser imports only this)
traffic.py   the async sender and what it reads of each answer
tally.py     the pure tallies: shares, windows, percentiles, cost
scoreboard.py  the gateway's own `/v1/providers` view, when it has one
view.py      the rich rendering
command.py   the entry point that ties them together
"""
