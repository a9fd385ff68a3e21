// Tells the server how large each received video is shown (`video_size`), so it forwards a
// simulcast layer that fits: a thumbnail never gets the full-resolution layer, and a video
// that is not shown gets nothing. Sizes are in device pixels; a change is reported once it
// has held for a scan (every second), and only when it differs from what was last sent.

const SCAN_MS = 1000;

export class SizeReporter {
  /**
   * @param {(msg: object) => boolean} send   sends a signaling message
   * @param {() => Map<string, {kind: string}>} remote  received tracks by server track id
   */
  constructor(send, remote) {
    this.send = send;
    this.remote = remote;
    this.sent = new Map();     // track id -> "WxH" last sent
    this.pending = new Map();  // track id -> "WxH" seen once, waiting to hold
    this.timer = setInterval(() => this.scan(), SCAN_MS);
  }

  stop() {
    clearInterval(this.timer);
  }

  /** The size each received video track is shown at now; 0×0 when it is not shown. */
  measure() {
    const sizes = new Map();
    for (const [id, r] of this.remote()) {
      if (r.kind === 'video') sizes.set(id, [0, 0]);
    }
    const dpr = window.devicePixelRatio || 1;
    // The tile's box, not the <video>'s: a tile waiting for its first frame hides the video
    // element, and reporting 0×0 then would keep the frames from ever coming.
    for (const tile of document.querySelectorAll('.tile[data-track]')) {
      const id = tile.dataset.track;
      if (!sizes.has(id) || document.hidden || tile.offsetParent === null) continue;
      sizes.set(id, [Math.round(tile.clientWidth * dpr), Math.round(tile.clientHeight * dpr)]);
    }
    return sizes;
  }

  scan() {
    const sizes = this.measure();
    for (const id of this.sent.keys()) {
      if (!sizes.has(id)) { this.sent.delete(id); this.pending.delete(id); }
    }
    for (const [id, [width, height]] of sizes) {
      const key = `${width}x${height}`;
      if (this.sent.get(id) === key) { this.pending.delete(id); continue; }
      // First sighting of a new track is sent at once; later changes must hold for a scan.
      if (this.sent.has(id) && this.pending.get(id) !== key) { this.pending.set(id, key); continue; }
      if (this.send({ type: 'video_size', track: id, width, height })) {
        this.sent.set(id, key);
        this.pending.delete(id);
      }
    }
  }
}
