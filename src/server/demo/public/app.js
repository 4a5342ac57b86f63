/** The demo page: a chat panel, a topic console and a status strip, all on /client/. */
import { startTokenField } from './access-token.js';
import { startChatPanel } from './chat-panel.js';
import { startStatusStrip } from './status-strip.js';
import { startTopicConsole } from './topic-console.js';

const baseUrl = location.origin;
startTokenField();
startStatusStrip(/** @type {HTMLElement} */ (document.getElementById('status')));
startTopicConsole(baseUrl);
startChatPanel(baseUrl);
