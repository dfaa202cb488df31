"""What the tests share: the fixture shop, a harness around the pipeline, this run's own
PostgreSQL database, `bot run` processes, the console's client, the browser, loopback fakes of
the platforms and a known week of service. Fixtures live in tests/conftest.py, helpers here;
test modules import from here, never from conftest or from one another."""
