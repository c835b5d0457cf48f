"""The terminal mixer: what it shows and what its keys do (`mixer_view`), drawn by textual (`mixer_app`)."""
