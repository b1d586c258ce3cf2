// nbdime's stylesheets for its diff widgets (diffview.ts), then ours
import 'nbdime/lib/styles/variables.css';
import 'nbdime/lib/styles/common.css';
import 'nbdime/lib/styles/diff.css';
import 'nbdime/lib/common/collapsible.css';
import './index.css';
import './browser.css';
