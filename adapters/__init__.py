"""Channel adapters: each speaks one channel's protocol and turns it into Inbound/Outbound."""
