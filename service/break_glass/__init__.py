"""Restricted patients and break-the-glass access: who may see a restricted patient's data, and for how long."""
