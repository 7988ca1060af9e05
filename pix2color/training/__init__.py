"""Training: a shared loop (:mod:`.loop`) that runs stage objects (:mod:`.stages`), one per recipe."""
