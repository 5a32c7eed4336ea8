"""The coordinator's worklist: today's tasks from the stored plan statuses, and what staff did about them."""
