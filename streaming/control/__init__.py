"""Live control: the registry of every named parameter, and MIDI."""
