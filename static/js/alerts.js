// Making an incoming call hard to miss: a short ring (WebAudio, no file to load), the tab's
// title flashing while calls wait and the tab is in the background, and a system notification
// where the agent allowed them. Browsers only let a page make sound after the person
// interacted with it, and ask for notification permission only on a click: the dashboard's
// "Enable notifications" button does that.

const RING_HZ = [880, 660];
const TONE_S = 0.18;

let audio = null;
let flashTimer = null;
let baseTitle = document.title;

/** Two short tones. Silently nothing if the browser does not allow sound yet. */
export function ring() {
  try {
    audio ||= new AudioContext();
    if (audio.state === 'suspended') audio.resume().catch(() => {});
    const start = audio.currentTime;
    RING_HZ.forEach((hz, i) => {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = hz;
      gain.gain.setValueAtTime(0.15, start + i * TONE_S);
      gain.gain.exponentialRampToValueAtTime(0.001, start + (i + 1) * TONE_S);
      tone.connect(gain).connect(audio.destination);
      tone.start(start + i * TONE_S);
      tone.stop(start + (i + 1) * TONE_S);
    });
  } catch {
    // No WebAudio: the title and the notification still tell.
  }
}

/** Flashes `(n) Incoming call` in the tab's title while `waiting() > 0`; stops by itself. */
export function flashTitle(waiting) {
  if (flashTimer) return;
  baseTitle = document.title.replace(/^\(\d+\) .*? — /, '') || baseTitle;
  let on = false;
  const tick = () => {
    const n = waiting();
    if (n === 0) {
      clearInterval(flashTimer);
      flashTimer = null;
      document.title = baseTitle;
      return;
    }
    on = !on || document.visibilityState === 'visible';
    document.title = on ? `(${n}) Incoming call — ${baseTitle}` : baseTitle;
  };
  tick();
  flashTimer = setInterval(tick, 1000);
}

export function notificationsAllowed() {
  return 'Notification' in window && Notification.permission === 'granted';
}

/** Asks for permission (call it from a click); answers whether notifications are on. */
export async function enableNotifications() {
  if (!('Notification' in window)) return false;
  return (await Notification.requestPermission()) === 'granted';
}

/** A system notification when the dashboard is in the background and the agent allowed it. */
export function notify(title, body, tag) {
  if (!notificationsAllowed() || document.visibilityState === 'visible') return null;
  const note = new Notification(title, { body, tag });
  note.onclick = () => {
    window.focus();
    note.close();
  };
  return note;
}
