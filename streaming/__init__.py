"""Low-latency streaming separation: the per-hop engine (`StreamingSeparator`) and the live host.

`python -m streaming` runs the live host (see README)."""
import sys

if sys.argv[:1] == ["-m"]:   # being imported for `python -m ...`: a Ctrl-C while torch loads is one line
    from core.signals import quiet_startup
    quiet_startup()

from core.config import declare_section

COMMAND = "streaming"              # `python -m streaming`: the config sections it reads
for _name, _schema in {
    "streaming": "streaming.engine.separator:EngineConfig",
    "host": "streaming.host.config:HostConfig",
    "latency_modes": "streaming.host.latency_modes:load_modes",
    "mixer": "streaming.processing.stem_mixer:MixerConfig",
    "midi": "streaming.control.midi:MidiConfig",
    "chains": "streaming.processing.effects:ChainsConfig",
    "key": "streaming.processing.keyshift:KeyConfig",
    "mic": "streaming.processing.mic:MicConfig",
    "routing": "streaming.processing.routing:RoutingConfig",
    "meters": "streaming.processing.meters:MeterConfig",
    "ui": "streaming.ui.mixer_view:UiConfig",
}.items():
    declare_section(_name, _schema, (COMMAND,))
del _name, _schema

from .engine.separator import StreamingSeparator

__all__ = ["StreamingSeparator"]
