"""Service metrics from stored events (FRT, AHT, FCR, CSAT, NPS, containment, SLA …) and the
weekly report. `definitions` says what each figure means, `arithmetic` computes them from plain
rows, `periods` cuts days and weeks in the service's time zone, `figures` and `weekly` put them
together, `charts` and `page` draw the report."""
