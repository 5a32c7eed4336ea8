"""FHIR Subscriptions (R4 Subscriptions Backport IG, STU 1.1): topics, subscriptions and their notifications.

Topics are defined here (topics.py), events are raised where the projection writes a resource version (events.py,
once per unit of work at its commit), notifications are built purely (notifications.py) and delivered by the sync
worker (service/sync/subscription_delivery.py); the /fhir routes are service/fhir/subscription_routes.py.
"""
