"""Live trading: the Alpaca broker client, the feed, the bridge and a local paper emulator."""
