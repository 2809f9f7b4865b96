"""AWS Bedrock through its Converse API (`POST /model/{modelId}/converse[-stream]`), signed
with SigV4; botocore (the `switchboard[bedrock]` extra) does the signing and the binary
event-stream framing and is imported only once a bedrock provider is configured."""
