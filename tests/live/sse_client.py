"""A server-sent events client for the live-stream tests: http.client over a real socket, the SSE parsing
rules of the HTML standard (fields, blank-line dispatch, comments), and the position a client resumes from
(the last `id:`)."""
import http.client
import json


class SseStream:
    """One GET of an event stream. events() yields (event, id, data) until the server ends the body."""

    def __init__(self, api, path, token=None, last_event_id=None, timeout=30):
        host, port = api.split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.last_id = last_event_id
        self.comments = 0

    def body(self):
        return self.resp.read()

    def events(self):
        event, data, eid = "message", [], None
        while True:
            line = self.resp.readline()
            if not line:
                return  # the end of the body (the last chunk) or a cut connection
            line = line.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data:
                    if eid is not None:
                        self.last_id = eid
                    yield event, eid, "\n".join(data)
                event, data, eid = "message", [], None
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                eid = value

    def close(self):
        self.conn.close()


def read_generation(api, org, gen, token=None, last_event_id=None, stop_after=None, timeout=60):
    """Reads a generation stream: returns (chunks [(seq, text)], the compacted event's data or None, the
    last id). stop_after: close the connection after that many chunks (a forced disconnect)."""
    s = SseStream(api, f"/v1/orgs/{org}/generations/{gen}/stream", token, last_event_id, timeout)
    assert s.status == 200, (s.status, s.body())
    chunks, compacted = [], None
    try:
        for event, eid, data in s.events():
            if event == "chunk":
                d = json.loads(data)
                assert str(d["seq"]) == eid, (d, eid)
                chunks.append((d["seq"], d["text"]))
                if stop_after is not None and len(chunks) >= stop_after:
                    break
            elif event == "compacted":
                compacted = json.loads(data)
                assert eid == "end"
            elif event == "closing":
                raise AssertionError(f"the server closed the stream: {data}")
    finally:
        s.close()
    return chunks, compacted, s.last_id
