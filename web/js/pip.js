// Picture-in-picture: the call in the browser's floating window while the person works in
// another tab or app. One off-screen <video> of our own goes into that window; it shows
// whatever the page says matters most (ui.js: a presented screen, else the last person
// heard), and follows it by swapping its stream, which needs no new click. Where the browser
// allows it (Chromium's automatic picture-in-picture for calls), the window also opens by
// itself when the tab is hidden, and closes again when the person comes back.

const video = document.createElement('video');
let choose = () => null;
let openedByItself = false;

/**
 * Shows `button` where the browser has picture-in-picture for videos. `source()` returns the
 * video track to show, or null; `onNothing()` runs when the button is pressed with none.
 */
export function initPip(button, source, onNothing) {
  choose = source;
  if (!document.pictureInPictureEnabled) return;
  video.id = 'pip-video';
  video.className = 'pip-video';
  video.muted = true;
  video.playsInline = true;
  video.setAttribute('aria-hidden', 'true');
  document.body.append(video);
  button.hidden = false;
  button.onclick = () => (document.pictureInPictureElement ? closePip() : open(onNothing));
  video.addEventListener('enterpictureinpicture', () => pressed(button, true));
  video.addEventListener('leavepictureinpicture', () => { pressed(button, false); openedByItself = false; });
  try {
    navigator.mediaSession?.setActionHandler('enterpictureinpicture', () => {
      openedByItself = true;
      open(() => {});
    });
  } catch { /* no automatic picture-in-picture in this browser: the button still works */ }
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && openedByItself) closePip();
  });
}

/** Follows the page's choice (call it whenever tiles or the speaker change). */
export function refreshPip() {
  const track = choose();
  if (track === (video.srcObject?.getVideoTracks()[0] || null)) return;
  if (!track) {
    closePip();
    video.srcObject = null;
    return;
  }
  video.srcObject = new MediaStream([track]);
  video.play().catch(() => { /* retried when the window opens */ });
}

export function closePip() {
  if (document.pictureInPictureElement === video) document.exitPictureInPicture().catch(() => {});
}

async function open(onNothing) {
  refreshPip();
  if (!video.srcObject) return onNothing();
  try {
    if (video.readyState < HTMLMediaElement.HAVE_METADATA) {
      await new Promise((resolve) => {
        video.addEventListener('loadedmetadata', resolve, { once: true });
        setTimeout(resolve, 3000); // no frame yet: let the browser say why it refuses
      });
    }
    await video.play();
    await video.requestPictureInPicture();
  } catch (e) {
    console.warn(`picture-in-picture refused: ${e.message}`);
  }
}

function pressed(button, on) {
  button.classList.toggle('active', on);
  button.setAttribute('aria-pressed', String(on));
}
