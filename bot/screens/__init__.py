"""Crystallization screens: the chemistry in each well. Pure. (Well names, layouts and numbering are
bot/plates/wells.py's.)

chemistry: a condition's text -> components (chemical, concentration, pH); short forms
reading:   a screen file's bytes (HWI cocktail CSV, or a hand-kept `well,condition` CSV) -> a Screen
common:    what a plate's hits share (components, pH range)
grid:      an optimisation grid around a hit, as a table, a CSV and a picture
messages:  the Slack text of all of it
"""
