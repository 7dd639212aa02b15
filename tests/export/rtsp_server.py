"""A minimal RTSP server on 127.0.0.1 for tests: a short video as MPEG-4 Part 2 over RTP.

  with RtspServer(frames, fps=25) as server:    # frames: uint8 [N, H, W, 3]
    url = server.url                            # rtsp://127.0.0.1:PORT/stream
    ...                                         # FFmpeg's RTSP client reads it

Just enough of RTSP 1.0 (RFC 2326) for FFmpeg's client: OPTIONS, DESCRIBE (an
SDP, RFC 4566), SETUP, PLAY, TEARDOWN, GET_PARAMETER (keep-alive). Media go
interleaved on the RTSP connection (RFC 2326 section 10.12, `$`, channel,
16-bit length, RTP packet): a SETUP asking for UDP gets 461 Unsupported
Transport, after which FFmpeg's client retries over TCP.

Payload: MPEG-4 Part 2 video (`MP4V-ES`, RFC 6416 section 7.3), chosen over
H.264 because its packetization is the simplest there is: each coded frame is
cut into pieces of at most `MTU` bytes at any byte, the last piece of a frame
carries the RTP marker bit, all pieces share the frame's 90 kHz timestamp.
The configuration (VOS/VOL headers) travels in-band before every key frame (the
encoder writes them there when no global header is asked for), so the SDP needs
no `config=`; FFmpeg's depacketizer hands the bytes to its MPEG-4 parser. The
encoder is FFmpeg's native `mpeg4`, present in every PyAV build.

Failure modes for tests: `stop_after=N` closes the connection after N frames (a
server that dies mid-stream); `stall_after=N` sends N frames, then nothing, with
the connection held open (a stream that stalls).
"""

import fractions
import socket
import struct
import threading
import time
from typing import Optional

import av
import numpy as np

MTU = 1400  # RTP payload bytes per packet
PAYLOAD_TYPE = 96  # dynamic (RFC 3551)
CLOCK = 90_000  # RTP clock of video (RFC 6416)
SSRC = 0x5453_4E45


def encode_mpeg4(frames: np.ndarray, fps: int, gop: int = 10):
  """uint8 `[N, H, W, 3]` -> one bytes object per frame (MPEG-4 Part 2, in-band headers)."""
  codec = av.CodecContext.create("mpeg4", "w")
  codec.width, codec.height = frames.shape[2], frames.shape[1]
  codec.pix_fmt = "yuv420p"
  codec.time_base = fractions.Fraction(1, fps)
  codec.framerate = fractions.Fraction(fps)
  codec.gop_size = gop
  codec.max_b_frames = 0  # decode order = display order: RTP timestamps rise
  codec.bit_rate = 400_000
  coded = []
  for i, rgb in enumerate(frames):
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    frame = frame.reformat(format="yuv420p")
    frame.pts = i
    coded.extend(bytes(p) for p in codec.encode(frame))
  coded.extend(bytes(p) for p in codec.encode(None))
  return coded


def rtp_packets(coded_frames, fps: int, first_seq: int = 0):
  """Yields (frame index, RTP packet bytes) for each piece of each coded frame."""
  seq = first_seq
  for index, data in enumerate(coded_frames):
    timestamp = (index * CLOCK // fps) & 0xFFFFFFFF
    pieces = [data[i:i + MTU] for i in range(0, len(data), MTU)] or [b""]
    for k, piece in enumerate(pieces):
      marker = 0x80 if k == len(pieces) - 1 else 0
      header = struct.pack("!BBHII", 0x80, marker | PAYLOAD_TYPE, seq & 0xFFFF, timestamp, SSRC)
      seq += 1
      yield index, header + piece


class RtspServer:
  """Serves `frames` to each client that connects, paced at `fps` (see the module doc).

  Attributes:
    url: `rtsp://127.0.0.1:PORT/stream`.
    frames_sent: frames sent to the last client.
    requests: the RTSP methods received, in order (all clients).
    transports: the Transport header of each SETUP.
  """

  def __init__(self, frames: np.ndarray, fps: int = 25, stop_after: Optional[int] = None,
               stall_after: Optional[int] = None, speed: float = 1.0):
    self.fps, self.speed = int(fps), float(speed)
    self.width, self.height = frames.shape[2], frames.shape[1]
    self.stop_after, self.stall_after = stop_after, stall_after
    self.coded = encode_mpeg4(frames, self.fps)
    self.frames_sent = 0
    self.requests = []
    self.transports = []
    self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    self._sock.bind(("127.0.0.1", 0))
    self._sock.listen(4)
    self.url = f"rtsp://127.0.0.1:{self._sock.getsockname()[1]}/stream"
    self._closed = threading.Event()
    self._threads = []
    self._conns = []
    self._accept = threading.Thread(target=self._serve, daemon=True)
    self._accept.start()

  def __enter__(self) -> "RtspServer":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def close(self) -> None:
    self._closed.set()
    try:
      self._sock.close()
    except OSError:
      pass
    for conn in self._conns:  # wakes the client threads blocked on a read
      try:
        conn.shutdown(socket.SHUT_RDWR)
      except OSError:
        pass
    for thread in self._threads:
      thread.join(timeout=2)

  def _serve(self):
    while not self._closed.is_set():
      try:
        conn, _ = self._sock.accept()
      except OSError:
        return
      self._conns.append(conn)
      thread = threading.Thread(target=self._client, args=(conn,), daemon=True)
      self._threads.append(thread)
      thread.start()

  def _sdp(self) -> bytes:
    return ("v=0\r\n"
            "o=- 0 0 IN IP4 127.0.0.1\r\n"
            "s=tsnet_tf test stream\r\n"
            "c=IN IP4 127.0.0.1\r\n"
            "t=0 0\r\n"
            "a=control:*\r\n"
            f"m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n"
            f"a=rtpmap:{PAYLOAD_TYPE} MP4V-ES/{CLOCK}\r\n"
            f"a=fmtp:{PAYLOAD_TYPE} profile-level-id=1\r\n"
            f"a=framerate:{self.fps}\r\n"
            f"a=cliprect:0,0,{self.height},{self.width}\r\n"
            "a=control:track0\r\n").encode()

  def _client(self, conn: socket.socket):
    done = threading.Event()
    sender = None
    lock = threading.Lock()  # replies and media share the socket
    reader = conn.makefile("rb")
    try:
      while not self._closed.is_set() and not done.is_set():
        first = reader.read(1)
        if not first:
          return
        if first == b"$":  # interleaved data from the client (RTCP receiver reports)
          channel_len = reader.read(3)
          reader.read(struct.unpack("!H", channel_len[1:])[0])
          continue
        lines = [first + reader.readline()]
        while lines[-1] not in (b"\r\n", b"\n", b""):
          lines.append(reader.readline())
        head = b"".join(lines).decode("latin-1")
        request, *header_lines = [l for l in head.split("\r\n") if l]
        headers = {}
        for line in header_lines:
          key, _, value = line.partition(":")
          headers[key.strip().lower()] = value.strip()
        if int(headers.get("content-length", 0)):
          reader.read(int(headers["content-length"]))
        method = request.split(" ", 1)[0]
        self.requests.append(method)
        reply = {"CSeq": headers.get("cseq", "0")}
        body = b""
        status = "200 OK"
        if method == "OPTIONS":
          reply["Public"] = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"
        elif method == "DESCRIBE":
          body = self._sdp()
          reply.update({"Content-Base": self.url + "/", "Content-Type": "application/sdp"})
        elif method == "SETUP":
          transport = headers.get("transport", "")
          self.transports.append(transport)
          if "TCP" not in transport.upper():
            status = "461 Unsupported Transport"
          else:
            reply.update({"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1",
                          "Session": "5453;timeout=60"})
        elif method == "PLAY":
          reply.update({"Session": "5453", "Range": "npt=0.000-",
                        "RTP-Info": f"url={self.url}/track0;seq=0;rtptime=0"})
        elif method in ("TEARDOWN", "GET_PARAMETER"):
          reply["Session"] = "5453"
        else:
          status = "501 Not Implemented"
        if body:
          reply["Content-Length"] = str(len(body))
        text = f"RTSP/1.0 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in reply.items())
        with lock:
          conn.sendall(text.encode() + b"\r\n" + body)
        if method == "PLAY" and sender is None:
          sender = threading.Thread(target=self._send, args=(conn, lock, done), daemon=True)
          sender.start()
        elif method == "TEARDOWN":
          return
    except OSError:
      return
    finally:
      done.set()
      if sender is not None:
        sender.join(timeout=2)
      try:
        conn.shutdown(socket.SHUT_RDWR)
      except OSError:
        pass
      conn.close()

  def _send(self, conn: socket.socket, lock: threading.Lock, done: threading.Event):
    """Media: each frame's packets at its time; then the ending this server plays."""
    start = time.monotonic()
    self.frames_sent = 0
    sent_index = -1
    try:
      for index, packet in rtp_packets(self.coded, self.fps):
        if index != sent_index:  # a new frame: wait for its time
          if self.stop_after is not None and index >= self.stop_after:
            conn.shutdown(socket.SHUT_RDWR)  # the server dies mid-stream
            return
          if self.stall_after is not None and index >= self.stall_after:
            done.wait(30)  # holds the connection open, sends nothing
            return
          delay = start + index / (self.fps * self.speed) - time.monotonic()
          if delay > 0 and done.wait(delay):
            return
          if sent_index >= 0:
            self.frames_sent += 1
          sent_index = index
        with lock:
          conn.sendall(struct.pack("!BBH", ord("$"), 0, len(packet)) + packet)
      self.frames_sent += 1
      # The end of the stream: an RTCP BYE (RFC 3550 6.6) on the RTCP channel, then close.
      bye = struct.pack("!BBHI", 0x81, 203, 1, SSRC)
      with lock:
        conn.sendall(struct.pack("!BBH", ord("$"), 1, len(bye)) + bye)
      time.sleep(0.2)
      conn.shutdown(socket.SHUT_RDWR)
    except OSError:
      return
