"""The revisions, oldest first. A released revision is never edited: add the next one."""
