// Local capture: microphone, camera, screen and the device lists.
// Returns MediaStreamTracks; who sends them and when is call.js's and meeting.js's business.

const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

const withDevice = (base, deviceId) => (deviceId ? { ...base, deviceId: { ideal: deviceId } } : base);

/**
 * Opens the microphone and/or camera. Never throws: whatever could not be opened is null and
 * `error` says why (the call still works without it).
 * @returns {Promise<{mic: MediaStreamTrack|null, cam: MediaStreamTrack|null, error: Error|null}>}
 */
export async function openLocal({ audio = true, video = true, micId, camId } = {}) {
  const out = { mic: null, cam: null, error: null };
  if (!navigator.mediaDevices?.getUserMedia) {
    out.error = new Error('this browser cannot capture media (insecure origin?)');
    return out;
  }
  const attempts = [];
  if (audio && video) attempts.push([true, true]);
  if (audio) attempts.push([true, false]);
  if (video) attempts.push([false, true]);
  for (const [a, v] of attempts) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: a && withDevice(AUDIO, micId),
        video: v && withDevice(VIDEO, camId),
      });
      out.mic = stream.getAudioTracks()[0] || null;
      out.cam = stream.getVideoTracks()[0] || null;
      return out;
    } catch (err) {
      out.error = out.error || err;
    }
  }
  return out;
}

export async function openMic(deviceId) {
  const s = await navigator.mediaDevices.getUserMedia({ audio: withDevice(AUDIO, deviceId) });
  return s.getAudioTracks()[0];
}

export async function openCam(deviceId) {
  const s = await navigator.mediaDevices.getUserMedia({ video: withDevice(VIDEO, deviceId) });
  return s.getVideoTracks()[0];
}

export async function openScreen() {
  const s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  const track = s.getVideoTracks()[0];
  if ('contentHint' in track) track.contentHint = 'detail';
  return track;
}

/** @returns {Promise<{audioinput: MediaDeviceInfo[], videoinput: MediaDeviceInfo[], audiooutput: MediaDeviceInfo[]}>} */
export async function listDevices() {
  const lists = { audioinput: [], videoinput: [], audiooutput: [] };
  try {
    for (const d of await navigator.mediaDevices.enumerateDevices()) lists[d.kind]?.push(d);
  } catch { /* no device access */ }
  return lists;
}

/** The deviceId a live track was opened from, if the browser says. */
export const deviceOf = (track) => track?.getSettings?.().deviceId || '';
