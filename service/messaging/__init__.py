"""Messages to patients: the invitation to a questionnaire and one reminder before its link expires, by e-mail
(SMTP) or text message (the hospital's SMS gateway, a webhook), delivered from the `patient_messages` table with
retries and dead letters like the sync outbox, respecting the patient's preferred channel and quiet hours.

queue.py is what the self-report package calls; sending.py is what the sweep runs.
"""
