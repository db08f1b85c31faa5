"""Sending deliveries: claim, build the channel message, send, record the attempt; provider
receipts; and the sweep that takes back what a lost message or a dead worker left behind."""
