"""What `bot run` tells Prometheus at /metrics: counters and a latency histogram each worker
keeps (`instruments`), and the cluster's queue state read from the database at scrape time
(`collector`). With several workers on one host, set PROMETHEUS_MULTIPROC_DIR and every
worker's /metrics shows the sum of all of them (prometheus-client's multiprocess mode)."""
