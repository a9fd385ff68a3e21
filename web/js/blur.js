// Background blur: the camera as others see it with everything but the person blurred. A
// person/background mask comes from MediaPipe's selfie segmentation model (shipped with the
// app in /static/vendor/selfie-segmentation, run in WebAssembly and WebGL in the browser; no
// frame leaves the page); each camera frame is drawn onto a canvas, sharp where the mask says
// person and blurred elsewhere, and the canvas's own video track is what gets sent.

const VENDOR = '/static/vendor/selfie-segmentation/';
const BLUR_PX = 14;
const FPS = 30;

let loading = null;

/** Loads the segmentation script once; resolves with its `SelfieSegmentation` class. */
function loadModel() {
  loading ||= new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = `${VENDOR}selfie_segmentation.js`;
    s.onload = () => (window.SelfieSegmentation ? resolve(window.SelfieSegmentation) : reject(new Error('the blur model did not load')));
    s.onerror = () => reject(new Error('the blur model could not be downloaded'));
    document.head.append(s);
  }).catch((err) => { loading = null; throw err; });
  return loading;
}

/**
 * Why this browser cannot blur, or '' when it can: the model needs WebAssembly SIMD and
 * WebGL, and the result is sent as a canvas's track.
 */
function blurUnsupported() {
  if (!HTMLCanvasElement.prototype.captureStream) return 'this browser cannot send a processed camera picture';
  if (!document.createElement('canvas').getContext('webgl2')) return 'it needs WebGL, which this browser has turned off';
  return '';
}

/**
 * Starts blurring the background of `camera`. Resolves once the first blurred frame is
 * drawn, with `{track, setCamera(track), stop()}`: `track` is the blurred picture (keep
 * sending it when the camera changes: `setCamera` swaps the source), `stop()` ends it.
 * Rejects with a sentence-ready reason when this browser cannot.
 */
export async function startBlur(camera) {
  const why = blurUnsupported();
  if (why) throw new Error(why);
  const Model = await loadModel();
  const model = new Model({ locateFile: (file) => VENDOR + file });
  model.setOptions({ modelSelection: 1 }); // the landscape model (144×256 input): faster
  await model.initialize();

  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d');
  // The model reads 256×144 whatever it is given: scaling down first saves uploading full frames.
  const small = document.createElement('canvas');
  small.width = 256;
  small.height = 144;
  let stopped = false;
  let current = null; // the frame being segmented, painted when its mask arrives
  let firstFrame;
  const drawn = new Promise((resolve) => { firstFrame = resolve; });

  model.onResults(({ segmentationMask }) => {
    if (stopped || !current) return;
    if (canvas.width !== current.width || canvas.height !== current.height) {
      canvas.width = current.width;
      canvas.height = current.height;
    }
    paint(ctx, current.image, segmentationMask);
    firstFrame();
  });
  const segment = async (image, width, height) => {
    small.getContext('2d').drawImage(image, 0, 0, small.width, small.height);
    current = { image, width, height };
    try {
      await model.send({ image: small });
    } catch (err) {
      console.warn(`background blur: ${err.message}`);
    }
    current = null;
  };

  let source = readFrames(camera, segment);
  const track = canvas.captureStream(FPS).getVideoTracks()[0];
  const stop = () => {
    stopped = true;
    source.stop();
    track.stop();
    model.close();
  };
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('the blur model gave no picture')), 15000));
  await Promise.race([drawn, timeout]).catch((err) => { stop(); throw err; });
  return {
    track,
    /** Blurs `next` from now on; null pauses (the camera is off). */
    setCamera(next) {
      source.stop();
      source = next ? readFrames(next, segment) : { stop() {} };
    },
    stop,
  };
}

/**
 * Calls `each(image, width, height)` for every frame of `track`, one at a time, until
 * `stop()`. Where the browser has MediaStreamTrackProcessor (Chromium), frames keep coming
 * while the tab is hidden; elsewhere a <video> ticks on requestVideoFrameCallback.
 */
function readFrames(track, each) {
  let stopped = false;
  if ('MediaStreamTrackProcessor' in window) {
    const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
    (async () => {
      while (!stopped) {
        const { value: frame, done } = await reader.read();
        if (done) return;
        try {
          if (!stopped) await each(frame, frame.displayWidth, frame.displayHeight);
        } finally {
          frame.close();
        }
      }
    })().catch((err) => console.warn(`background blur: ${err.message}`));
    return { stop() { stopped = true; reader.cancel().catch(() => {}); } };
  }
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([track]);
  video.play().catch(() => { /* muted: plays without a gesture */ });
  const tick = async () => {
    if (stopped) return;
    if (video.videoWidth) await each(video, video.videoWidth, video.videoHeight);
    if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(tick);
    else setTimeout(tick, 1000 / FPS);
  };
  tick();
  return { stop() { stopped = true; video.srcObject = null; } };
}

/** The person sharp over a blurred copy of the whole frame. */
function paint(ctx, image, mask) {
  const { width: w, height: h } = ctx.canvas;
  ctx.save();
  ctx.clearRect(0, 0, w, h);
  ctx.drawImage(mask, 0, 0, w, h);
  ctx.globalCompositeOperation = 'source-in';
  ctx.drawImage(image, 0, 0, w, h);
  ctx.globalCompositeOperation = 'destination-over';
  ctx.filter = `blur(${BLUR_PX}px)`;
  ctx.drawImage(image, 0, 0, w, h);
  ctx.restore();
}
