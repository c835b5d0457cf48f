"""What happens to the audio on the worker thread: resampling, the remix chain, the stem mixer, effects,
key change, delays, routing, the singer's mic and the meters."""
