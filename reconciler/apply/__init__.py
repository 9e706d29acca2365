"""Apply: turn a plan into API calls — uploads, exactly-once creates, cancels, deletes."""
