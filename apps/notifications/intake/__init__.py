"""Accepting notifications: the create and cancel services, frequency caps, broadcasts, and the
selectors the API reads with."""
