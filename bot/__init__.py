"""Customer-service bot core: the pipeline from an inbound message to a reply or a ticket."""
