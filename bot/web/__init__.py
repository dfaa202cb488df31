"""The long-running service (`bot run`): the aiohttp application, the message service channels
hand their messages to, and the place where channels mount their routes."""
