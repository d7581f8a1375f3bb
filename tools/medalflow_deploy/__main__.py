import sys

from medalflow_deploy.deploy import main

sys.exit(main())
