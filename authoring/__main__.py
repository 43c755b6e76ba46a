from authoring.nbcheck import main

raise SystemExit(main())
