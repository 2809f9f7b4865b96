"""An in-process provider with configured latency, speed, token counts and failures."""
