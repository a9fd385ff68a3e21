// Call: the one RTCPeerConnection to the SFU.
// Owns negotiation (perfect negotiation, we are the POLITE peer, every step serialized through
// one promise queue), the `publish` list, ICE restarts, our sending transceivers (one per
// source) and the map of remote tracks, read from the remote SDP's msid lines
// (`a=msid:<participant> <track>`). It sends through the `send` callback and never touches the DOM.

import { sentence } from './api.js';
import { pid } from './signaling.js';

const DISCONNECTED_GRACE_MS = 2000;
const MAX_REJECTED_OFFERS = 3;

const isStopped = (t) => t.currentDirection === 'stopped' || t.stopped === true;

/**
 * The camera's simulcast encodings, lowest first (the order the server numbers layers in):
 * quarter, half and full resolution. The server forwards each viewer the layer that fits its
 * bandwidth and the size it shows the video at, and pauses layers nobody needs.
 */
const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_500_000 },
];

/** Sets a sender's degradation preference where the browser supports it. */
function setDegradation(sender, preference) {
  const params = sender.getParameters();
  params.degradationPreference = preference;
  sender.setParameters(params).catch(() => { /* not supported: the browser's default */ });
}

/** Splits an SDP into its media sections: {mid, kind, dir, msid: [stream, track]|null, rejected}. */
export function mediaSections(sdp) {
  return sdp.split(/\r?\n(?=m=)/).slice(1).map((s) => {
    const mline = /^m=(\w+) (\d+)/.exec(s);
    const msid = /^a=msid:(\S+) (\S+)/m.exec(s);
    return {
      kind: mline?.[1],
      rejected: mline?.[2] === '0',
      mid: /^a=mid:(\S+)/m.exec(s)?.[1] ?? null,
      dir: /^a=(sendrecv|sendonly|recvonly|inactive)\s*$/m.exec(s)?.[1] ?? 'sendrecv',
      msid: msid ? [msid[1], msid[2]] : null,
    };
  });
}

/** Whether two SDPs have the same media sections (mid, kind, direction, msid, port 0). */
function sameShape(a, b) {
  if (!a || !b) return false;
  const key = (sdp) => mediaSections(sdp).map((s) => [s.mid, s.kind, s.dir, s.msid?.join(' '), s.rejected].join('|')).join('\n');
  return key(a) === key(b);
}

export class Call {
  /**
   * @param {object} o
   * @param {RTCIceServer[]} o.iceServers
   * @param {(msg: object) => boolean} o.send            sends one signaling message
   * @param {() => void} [o.onRemoteChange]              remote tracks appeared, went or (un)muted
   * @param {(state: string) => void} [o.onConnectionState]
   * @param {(err: Error, broken: boolean) => void} [o.onError]  broken: negotiation cannot continue
   * @param {boolean} [o.relayOnly]                     only TURN relay candidates (iceTransportPolicy 'relay')
   */
  constructor({ iceServers, send, onRemoteChange, onConnectionState, onError, videoCodec, relayOnly, simulcast = true }) {
    this.videoCodec = videoCodec ? `video/${videoCodec}`.toLowerCase() : null; // preferred, e.g. H264
    this.pc = new RTCPeerConnection({
      iceServers: iceServers || [],
      bundlePolicy: 'max-bundle',
      iceTransportPolicy: relayOnly ? 'relay' : 'all',
    });
    this.send = send;
    this.onRemoteChange = onRemoteChange || (() => {});
    this.onConnectionState = onConnectionState || (() => {});
    this.onError = onError || ((err) => console.error(err));
    this.simulcast = simulcast;
    this.queue = Promise.resolve();
    this.layerUpdates = Promise.resolve(); // setActiveLayers, one at a time
    this.wantedLayers = new Map(); // mid -> rids the server wants sent
    this.wantOffer = false;     // an offer is due as soon as we are `stable`
    this.wantRestart = false;   // ...and it must restart ICE
    this.lastOfferRestart = false;
    this.rejected = 0;          // our offers refused in a row (bad_sdp)
    this.local = new Map();     // source -> our sendonly RTCRtpTransceiver
    this.remote = new Map();    // server track id -> {id, participant, kind, mid, track}
    this.gone = new Set();      // track ids unpublished; ignored even if an old SDP still lists them
    this.seen = new Map();      // mid -> {participant, trackId} from ontrack (fallback if no msid)
    this.closed = false;
    this.discTimer = 0;

    const pc = this.pc;
    pc.onnegotiationneeded = () => this.negotiate();
    pc.onicecandidate = (e) => this.send({ type: 'candidate', candidate: e.candidate ? e.candidate.candidate : '' });
    pc.ontrack = (e) => {
      const stream = e.streams[0];
      if (e.transceiver.mid) this.seen.set(e.transceiver.mid, { participant: stream?.id, trackId: e.track.id });
      if (!e.track._stoaWatched) {
        e.track._stoaWatched = true;
        const changed = () => !this.closed && this.onRemoteChange();
        e.track.addEventListener('mute', changed);
        e.track.addEventListener('unmute', changed);
        e.track.addEventListener('ended', () => !this.closed && this.syncRemote());
      }
    };
    pc.onconnectionstatechange = () => this.watchConnection();
    // Harmless, keeps an SCTP association (and so the transport) up even with nothing to send.
    this.dc = pc.createDataChannel('stoa');
  }

  // ---- the negotiation queue -------------------------------------------------------------

  /** Runs one negotiation step after all earlier ones; failures are reported, not thrown. */
  run(step, what) {
    const p = this.queue.then(() => (this.closed ? undefined : step()));
    this.queue = p.catch((err) => {
      if (this.closed) return;
      const e = new Error(`${sentence(what).slice(0, -1)} failed. ${sentence(err?.message || err)}`);
      e.cause = err;
      this.onError(e, what === 'answering the server');
    });
    return this.queue;
  }

  /** Asks for an offer (from onnegotiationneeded, a new track, or an ICE restart). */
  negotiate({ iceRestart = false } = {}) {
    this.wantOffer = true;
    if (iceRestart) this.wantRestart = true;
    return this.run(() => this.offer(), 'offering');
  }

  async offer() {
    const pc = this.pc;
    // Not stable: an offer is in flight; this one goes once its answer (or a server offer) lands.
    if (!this.wantOffer || pc.signalingState !== 'stable') return;
    if (this.rejected >= MAX_REJECTED_OFFERS) return;
    const iceRestart = this.wantRestart;
    this.wantOffer = this.wantRestart = false;
    const offer = await pc.createOffer({ iceRestart });
    // Chrome can keep firing negotiationneeded with nothing to change (e.g. after rolling back
    // an offer that introduced the data channel, crbug 1032987): don't send no-op offers.
    if (!iceRestart && sameShape(offer.sdp, pc.currentLocalDescription?.sdp)) return;
    await pc.setLocalDescription(offer);
    this.lastOfferRestart = iceRestart;
    this.send({ type: 'offer', sdp: pc.localDescription.sdp });
    this.publish();
  }

  /** A server offer. It always gets an answer; ours, if pending, is rolled back and redone. */
  handleOffer(sdp) {
    return this.run(async () => {
      const pc = this.pc;
      if (pc.signalingState === 'have-local-offer') {
        // Glare: the server (impolite) ignored our offer. Roll back, answer, offer again.
        this.wantOffer = true;
        if (this.lastOfferRestart) this.wantRestart = true;
        await pc.setLocalDescription({ type: 'rollback' });
      }
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      this.send({ type: 'answer', sdp: pc.localDescription.sdp });
      this.publish();
      this.syncRemote();
      await this.offer();
    }, 'answering the server');
  }

  handleAnswer(sdp) {
    return this.run(async () => {
      const pc = this.pc;
      if (pc.signalingState !== 'have-local-offer') return; // stale: that offer was rolled back
      try {
        await pc.setRemoteDescription({ type: 'answer', sdp });
      } catch (err) {
        await pc.setLocalDescription({ type: 'rollback' });
        throw err;
      }
      this.rejected = 0;
      this.syncRemote();
      await this.offer();
    }, 'applying the answer');
  }

  /** The server refused our last offer (`bad_sdp`): roll it back so we are usable again. */
  offerRejected() {
    return this.run(async () => {
      if (this.pc.signalingState !== 'have-local-offer') return;
      this.rejected++;
      await this.pc.setLocalDescription({ type: 'rollback' });
      await this.offer();
    }, 'rolling back');
  }

  /** Sends `publish`: what each of our sending transceivers carries. */
  publish() {
    const tracks = [];
    for (const [source, t] of this.local) {
      if (t.mid && !isStopped(t) && t.direction === 'sendonly' && t.sender.track) {
        tracks.push({ mid: t.mid, source, muted: !t.sender.track.enabled });
      }
    }
    this.send({ type: 'publish', tracks });
  }

  // ---- our tracks ------------------------------------------------------------------------

  // Changes that need an offer also call negotiate() themselves: Chrome stops firing
  // negotiationneeded once its flag is stuck (see offer()), and negotiate() coalesces.

  /**
   * Starts sending `track` as `source` (microphone, camera, screen). A source already being
   * sent switches track on its transceiver (replaceTrack, no renegotiation); otherwise a new
   * sendonly transceiver is added (an idle one is not reused: a fresh mid is a fresh track
   * for the server) and we renegotiate.
   */
  async setTrack(source, track, stream) {
    const t = this.local.get(source);
    if (t && !isStopped(t) && t.direction === 'sendonly') {
      await t.sender.replaceTrack(track);
      return;
    }
    const opts = { direction: 'sendonly', streams: stream ? [stream] : [] };
    if (source === 'camera' && this.simulcast) opts.sendEncodings = SIMULCAST_LAYERS.map((l) => ({ ...l }));
    if (source === 'screen') track.contentHint = 'detail';
    const transceiver = this.pc.addTransceiver(track, opts);
    if (track.kind === 'video' && this.videoCodec) preferCodec(transceiver, this.videoCodec);
    // A shared screen keeps its sharpness and gives up frame rate when bandwidth is short.
    if (source === 'screen') setDegradation(transceiver.sender, 'maintain-resolution');
    this.local.set(source, transceiver);
    this.negotiate();
  }

  /**
   * The server's `layers`: which simulcast layers of our track `trackId` ("p7-1") anyone
   * watches; the others are paused (dynacast) until someone needs them. Updates are applied
   * one at a time, each with the latest wish: a setParameters() begun while another is
   * pending fails, and the layer it was to resume would stay paused.
   */
  setActiveLayers(trackId, active) {
    const mid = trackId.slice(trackId.lastIndexOf('-') + 1);
    this.wantedLayers.set(mid, active);
    this.layerUpdates = this.layerUpdates.then(() => this.applyLayers(mid));
    return this.layerUpdates;
  }

  async applyLayers(mid) {
    const t = [...this.local.values()].find((x) => x.mid === mid && !isStopped(x));
    const active = this.wantedLayers.get(mid);
    if (!t || !active) return;
    const params = t.sender.getParameters();
    if (!params.encodings?.some((e) => e.rid)) return;
    let changed = false;
    for (const e of params.encodings) {
      const on = active.includes(e.rid);
      if (e.active !== on) { e.active = on; changed = true; }
    }
    if (changed) await t.sender.setParameters(params).catch((err) => console.warn('stoa: layers', err));
  }

  /** Stops sending `source`: its transceiver goes inactive and we renegotiate. */
  async removeTrack(source) {
    const t = this.local.get(source);
    if (!t || isStopped(t)) return;
    await t.sender.replaceTrack(null);
    t.direction = 'inactive';
    this.negotiate();
  }

  /** Mutes or unmutes what we send as `source` and tells the room. */
  setMuted(source, muted) {
    const t = this.local.get(source);
    if (!t?.sender.track) return;
    t.sender.track.enabled = !muted;
    if (t.mid && t.direction === 'sendonly') this.send({ type: 'mute', mid: t.mid, muted });
  }

  // ---- remote tracks ---------------------------------------------------------------------

  /** Rebuilds `remote` from the remote description: each server-sending m-line and its msid. */
  syncRemote() {
    const sdp = this.pc.remoteDescription?.sdp;
    if (!sdp || this.closed) return;
    const byMid = new Map(mediaSections(sdp).map((s) => [s.mid, s]));
    const ours = new Set(this.local.values());
    const next = new Map();
    for (const t of this.pc.getTransceivers()) {
      const s = byMid.get(t.mid);
      if (!s || ours.has(t) || isStopped(t) || s.rejected) continue;
      if (s.dir !== 'sendonly' && s.dir !== 'sendrecv') continue;
      const track = t.receiver.track;
      const seen = this.seen.get(t.mid) || {};
      const id = s.msid?.[1] || seen.trackId || track.id;
      const owner = s.msid && s.msid[0] !== '-' ? s.msid[0] : seen.participant;
      if (!owner || this.gone.has(id) || track.readyState === 'ended') continue;
      next.set(id, { id, participant: pid(owner), kind: track.kind, mid: t.mid, track });
    }
    this.remote = next;
    this.onRemoteChange();
  }

  /** `track_unpublished`: forget it now, without waiting for the server's renegotiation. */
  forgetTrack(id) {
    this.gone.add(id);
    if (this.remote.delete(id)) this.onRemoteChange();
  }

  /** `track_published`: the server may reuse a track id (e.g. "p7-3") after unpublishing it. */
  reviveTrack(id) {
    if (this.gone.delete(id)) this.syncRemote();
  }

  forgetParticipant(participant) {
    let changed = false;
    for (const [id, r] of this.remote) {
      if (r.participant === participant) { this.gone.add(id); this.remote.delete(id); changed = true; }
    }
    if (changed) this.onRemoteChange();
  }

  // ---- connection health -----------------------------------------------------------------

  watchConnection() {
    const state = this.pc.connectionState;
    clearTimeout(this.discTimer);
    if (state === 'failed') this.restartIce();
    if (state === 'disconnected') {
      this.discTimer = setTimeout(() => {
        if (this.pc.connectionState === 'disconnected') this.restartIce();
      }, DISCONNECTED_GRACE_MS);
    }
    this.onConnectionState(state);
  }

  restartIce() {
    if (this.closed) return;
    this.pc.restartIce?.();
    this.negotiate({ iceRestart: true });
  }

  // ---- stats -----------------------------------------------------------------------------

  /** A summary of pc.getStats(): inbound/outbound RTP and the selected candidate pair. */
  async stats() {
    const report = await this.pc.getStats();
    const inbound = [];
    const outbound = [];
    let pairId = null;
    const pairs = [];
    report.forEach((s) => {
      if (s.type === 'inbound-rtp') {
        inbound.push({
          kind: s.kind, mid: s.mid, trackIdentifier: s.trackIdentifier,
          packetsReceived: s.packetsReceived, packetsLost: s.packetsLost, bytesReceived: s.bytesReceived,
          framesDecoded: s.framesDecoded, frameWidth: s.frameWidth, frameHeight: s.frameHeight,
          framesPerSecond: s.framesPerSecond, audioLevel: s.audioLevel,
          totalAudioEnergy: s.totalAudioEnergy, totalSamplesReceived: s.totalSamplesReceived,
          jitter: s.jitter, codec: report.get(s.codecId)?.mimeType,
          freezeCount: s.freezeCount, totalFreezesDuration: s.totalFreezesDuration,
        });
      } else if (s.type === 'outbound-rtp') {
        outbound.push({
          kind: s.kind, mid: s.mid, rid: s.rid, active: s.active, packetsSent: s.packetsSent,
          bytesSent: s.bytesSent, framesEncoded: s.framesEncoded, frameWidth: s.frameWidth,
        });
      } else if (s.type === 'transport' && s.selectedCandidatePairId) {
        pairId = s.selectedCandidatePairId;
      } else if (s.type === 'candidate-pair') {
        pairs.push(s);
      }
    });
    const pair = (pairId && report.get(pairId))
      || pairs.find((p) => p.selected)
      || pairs.find((p) => p.nominated && p.state === 'succeeded');
    let selectedPair = null;
    if (pair) {
      const local = report.get(pair.localCandidateId);
      const remote = report.get(pair.remoteCandidateId);
      selectedPair = {
        state: pair.state,
        local: local?.candidateType, remote: remote?.candidateType,
        localCandidateType: local?.candidateType, remoteCandidateType: remote?.candidateType,
        localProtocol: local?.protocol, remoteProtocol: remote?.protocol,
        localAddress: local?.address, remoteAddress: remote?.address, remotePort: remote?.port,
        currentRoundTripTime: pair.currentRoundTripTime,
      };
    }
    return { connectionState: this.pc.connectionState, inbound, outbound, selectedPair };
  }

  /** Closes the connection; local tracks are left running (they are reused by the next Call). */
  close() {
    this.closed = true;
    clearTimeout(this.discTimer);
    this.pc.onnegotiationneeded = this.pc.onicecandidate = this.pc.ontrack = null;
    this.pc.onconnectionstatechange = null;
    try { this.pc.close(); } catch { /* already closed */ }
  }
}

/** Puts `mimeType` (lower case) first in a transceiver's codec list, when the browser has it. */
function preferCodec(transceiver, mimeType) {
  const codecs = RTCRtpSender.getCapabilities('video')?.codecs || [];
  const first = codecs.filter((c) => c.mimeType.toLowerCase() === mimeType);
  if (first.length && transceiver.setCodecPreferences) {
    transceiver.setCodecPreferences([...first, ...codecs.filter((c) => c.mimeType.toLowerCase() !== mimeType)]);
  }
}
