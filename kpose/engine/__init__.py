"""Training machinery around ``model.fit``: losses, schedules, configs, callbacks."""
