"""Feature extraction: behaviour per entity (:mod:`.behaviour`) and content per request (:mod:`.content`)."""
