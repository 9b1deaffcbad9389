// One live audio call over WebRTC, signaled through the hub. The customer offers once an agent
// has accepted; the agent answers. ICE candidates trickle both ways; candidates that arrive
// before the remote description are held until it is set.

import { api } from './switchboard.js';

let iceServersPromise;

/** The ICE servers the hub is configured with (none on a LAN). */
export function iceServers() {
  iceServersPromise ||= api('/api/v1/webrtc/config')
    .then((config) => config.ice_servers || [])
    .catch(() => []);
  return iceServersPromise;
}

export class AudioCall {
  /**
   * @param {object} options
   * @param {import('./switchboard.js').SwitchboardClient} options.client
   * @param {string} options.callId
   * @param {HTMLAudioElement} options.audio where the other party is heard
   * @param {(state: string) => void} [options.onState] RTCPeerConnection state changes
   */
  constructor({ client, callId, audio, onState }) {
    this.client = client;
    this.callId = callId;
    this.audio = audio;
    this.onState = onState || (() => {});
    this.heldCandidates = [];
    this.ready = null;
  }

  /** The connection's state, for people and tests. */
  get state() {
    return this.pc ? this.pc.connectionState : 'new';
  }

  setup() {
    this.ready ||= (async () => {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      this.pc = new RTCPeerConnection({ iceServers: await iceServers() });
      for (const track of this.stream.getTracks()) this.pc.addTrack(track, this.stream);
      if (this.muted) this.setMuted(true);
      this.pc.onicecandidate = (event) => {
        if (event.candidate) {
          this.client.send({ type: 'ice_candidate', call_id: this.callId, candidate: event.candidate.toJSON() });
        }
      };
      this.pc.ontrack = (event) => {
        this.audio.srcObject = event.streams[0];
      };
      this.pc.onconnectionstatechange = () => this.onState(this.pc.connectionState);
    })();
    return this.ready;
  }

  /** The calling side: make and send the offer. */
  async offer() {
    await this.setup();
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    this.client.send({ type: 'webrtc_offer', call_id: this.callId, sdp: this.pc.localDescription.toJSON() });
  }

  /** The answering side: take the offer, send the answer. */
  async takeOffer(sdp) {
    await this.setup();
    await this.pc.setRemoteDescription(sdp);
    await this.flushCandidates();
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    this.client.send({ type: 'webrtc_answer', call_id: this.callId, sdp: this.pc.localDescription.toJSON() });
  }

  async takeAnswer(sdp) {
    await this.setup();
    await this.pc.setRemoteDescription(sdp);
    await this.flushCandidates();
  }

  async takeCandidate(candidate) {
    if (!this.pc || !this.pc.remoteDescription) {
      this.heldCandidates.push(candidate);
      return;
    }
    await this.pc.addIceCandidate(candidate).catch(() => {});
  }

  async flushCandidates() {
    const held = this.heldCandidates.splice(0);
    for (const candidate of held) await this.pc.addIceCandidate(candidate).catch(() => {});
  }

  /** Routes the hub's signaling frames for this call. */
  attach() {
    const mine = (handler) => (frame) => frame.call_id === this.callId && handler(frame);
    this.detach = [
      this.client.on('webrtc_offer', mine((f) => this.takeOffer(f.sdp))),
      this.client.on('webrtc_answer', mine((f) => this.takeAnswer(f.sdp))),
      this.client.on('ice_candidate', mine((f) => this.takeCandidate(f.candidate))),
    ];
    return this;
  }

  /** Mutes or unmutes my microphone (the call goes on; the other side hears silence). */
  setMuted(muted) {
    this.muted = muted;
    for (const track of this.stream ? this.stream.getAudioTracks() : []) track.enabled = !muted;
  }

  close() {
    for (const off of this.detach || []) off();
    if (this.pc) this.pc.close();
    for (const track of this.stream ? this.stream.getTracks() : []) track.stop();
    this.audio.srcObject = null;
  }
}
