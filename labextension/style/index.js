import './index.css';
import './browser.css';
