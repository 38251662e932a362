"""Find the Crystals: classify crystallization-drop images with a vision model, from Slack or a terminal."""
