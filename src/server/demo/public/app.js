/** The demo page: a chat panel, a topic console and a status strip, all on /client/. */
import { startChatPanel } from './chat-panel.js';
import { startStatusStrip } from './status-strip.js';
import { startTopicConsole } from './topic-console.js';

const baseUrl = location.origin;
startStatusStrip(/** @type {HTMLElement} */ (document.getElementById('status')));
startTopicConsole(baseUrl);
startChatPanel(baseUrl);
